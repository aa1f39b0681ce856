"""Checks for the exercises of notebooks/exercises/17_flow_matching_exercises.ipynb.

Each ``check_*`` function runs a student's answer on fixed inputs (fixed seeds, CPU tensors),
compares it with the package's own implementation (``paths``, ``solvers``, ``couplings``,
``metrics``, ``marginal_field``, ``guidance``) within a tolerance, and then either prints one
short line starting with ``Correct:`` or raises an ``AssertionError`` whose message says what was expected, what was
received and, when the answer matches a typical mistake, which one. An answer that raises, returns NaN or
returns the wrong shape fails the same way, naming the function. A stub that still raises
``NotImplementedError`` is left to raise it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import _short
from .base_distributions import sample_base
from .couplings import minibatch_ot_coupling
from .data import RING_RADIUS, RING_STD, create_ring_gaussians, ring_mode_centers
from .marginal_field import RingMarginalField
from .metrics import distance_to_nearest_mode, off_mode_fraction, ring_quality
from .paths import conditional_velocity, flow_matching_loss, interpolate
from .solvers import euler_step, generate, rk4_step, solve_ode
from .guidance import GuidedVelocity
from .models import class_code

ATOL = 1e-4           # absolute tolerance of every comparison of points or velocities
RTOL = 1e-4           # relative tolerance of comparisons of scalars (losses, costs)


# ----------------------------------------------------------------------------- helpers

def _require_callable(name: str, value) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be the function you wrote (a callable), got {_short(value)}")


def _fail(what: str, expected: str, received: str, hint: str = "") -> None:
    """Raise the AssertionError every check uses: what went wrong, expected, received, hint."""
    message = f"{what}: expected {expected}, received {received}."
    if hint:
        message += f" Hint: {hint}"
    raise AssertionError(message)


def _call(name: str, function, *args, **kwargs):
    """``function(*args, **kwargs)``, the student's code; an error in it fails the check with a message that
    names ``name`` (a stub's NotImplementedError is left to raise)."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:                 # reported below, outside the except: no traceback into the check
        kind, text = type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else ""
    _fail(f"{name} raised {kind}", "a result", f"the error {kind}: {text}" if text else f"the error {kind}",
          "call it by itself in a cell on a small input and read the traceback.")


def _as_tensor(name: str, value, shape: tuple) -> torch.Tensor:
    """The student's result as a detached float CPU tensor of ``shape`` with finite values, or a clear failure."""
    if not isinstance(value, torch.Tensor):
        _fail(f"{name} returned the wrong type", f"a torch.Tensor of shape {shape}", _short(value),
              "build the result from the input tensors with torch operations.")
    if tuple(value.shape) != tuple(shape):
        _fail(f"{name} returned the wrong shape", f"shape {tuple(shape)}", f"shape {tuple(value.shape)}",
              "keep one row per point; broadcasting t of shape (B, 1) against (B, 2) does this.")
    value = value.detach().float().cpu()
    _check_finite(name, value)
    return value


def _check_finite(name: str, value: torch.Tensor) -> None:
    """Fail when the student's result holds NaN or inf."""
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        _fail(f"{name} returned NaN or inf", "finite numbers", f"{bad} of {value.numel()} values NaN or inf",
              "look for a division by zero, the log of 0 or the square root of a negative number.")


def _vector(v: torch.Tensor) -> str:
    return "(" + ", ".join(f"{float(a):.3f}" for a in v.reshape(-1)) + ")"


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=0.0))


def _compare(name: str, received: torch.Tensor, expected: torch.Tensor, where, mistakes: dict, hint: str) -> None:
    """Fail unless received equals expected (B, D): name the first wrong row (``where(i)`` describes
    its input) and the first typical mistake (hint -> its result) that ``received`` equals."""
    if _close(received, expected):
        return
    i = int(torch.nonzero(((received - expected).abs() > ATOL).any(dim=1))[0, 0])
    hint = next((h for h, result in mistakes.items() if _close(received, result)), hint)
    _fail(f"{name} is wrong {where(i)}", _vector(expected[i]), _vector(received[i]), hint)


def _check_choice(name: str, answer, right: str, hints: dict, expected: str) -> str:
    """A multiple-choice answer: fail unless ``answer`` is the letter ``right`` ('(C)', ' c' count);
    ``hints`` maps each wrong letter to the reason it is wrong."""
    choice = answer.strip().lower().strip("()") if isinstance(answer, str) else answer
    if choice not in set(hints) | {right}:
        _fail(f"{name} is not one of the choices", f"one of {sorted(set(hints) | {right})}", _short(answer),
              f"set {name} to a single letter in quotes, e.g. {name} = 'a'.")
    if choice != right:
        _fail(f"{name} is not the right choice", expected, repr(choice), hints[choice])
    return choice


def _fixed_pairs(n: int = 256, seed: int = 0):
    """Base points x0, ring points x1 (n, 2) and times t (n, 1), the same on every machine."""
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0])
    t = torch.rand(n, 1, generator=generator)
    return x0, x1, t


class SpiralField(nn.Module):
    """A known velocity field that depends on both x and t, for checking solvers exactly.

    v(x, t) = A x + (2t - 1) b with A a damped rotation; x: (B, 2), t a float or (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("matrix", torch.tensor([[-0.5, -1.0], [1.0, -0.5]]))
        self.register_buffer("offset", torch.tensor([1.0, 0.5]))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = t if isinstance(t, torch.Tensor) else torch.tensor(float(t))
        return x @ self.matrix.T + (2 * t - 1) * self.offset


class LinearProbe(nn.Module):
    """A small model with parameters whose output clearly depends on x and t, for checking losses.

    v(x, t) = x W^T + t b + c with fixed W (2, 2), b (2,), c (2,); x: (B, 2), t: (B, 1).
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[0.3, -1.2], [0.8, 0.5]]))
        self.time_weight = nn.Parameter(torch.tensor([2.0, -1.0]))
        self.bias = nn.Parameter(torch.tensor([0.5, 0.2]))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return x @ self.weight.T + t * self.time_weight + self.bias


# ----------------------------------------------------------------------------- exercise 1

def check_path(interpolate_point, target_velocity) -> None:
    """Exercise 1: ``interpolate_point(x0, x1, t)`` and ``target_velocity(x0, x1)``.

    x0, x1: (B, 2), t: (B, 1) -> (B, 2). Compared with ``paths.interpolate`` and
    ``paths.conditional_velocity`` on 256 fixed pairs.
    """
    _require_callable("interpolate_point", interpolate_point)
    _require_callable("target_velocity", target_velocity)
    x0, x1, t = _fixed_pairs()
    received = _as_tensor("interpolate_point", _call("interpolate_point", interpolate_point, x0.clone(), x1.clone(),
                                                     t.clone()), x0.shape)
    _compare("interpolate_point", received, interpolate(x0, x1, t),
             lambda i: f"at t = {float(t[i]):.3f}, x0 = {_vector(x0[i])}, x1 = {_vector(x1[i])}", {
                 "this is t*x0 + (1-t)*x1, the path run backwards: at t = 0 the point must be x0 (noise).":
                     t * x0 + (1 - t) * x1,
                 "at t = 0.5 the point should be halfway, not the sum; use the weights (1 - t) and t.":
                     x0 + t * x1,
                 "the point should move from x0 towards x1 as t grows: x0 + t (x1 - x0).": x0 + t * (x0 - x1),
             }, "x_t = (1 - t) x0 + t x1 equals x0 at t = 0 and x1 at t = 1.")
    received = _as_tensor("target_velocity", _call("target_velocity", target_velocity, x0.clone(), x1.clone()),
                          x0.shape)
    _compare("target_velocity", received, conditional_velocity(x0, x1),
             lambda i: f"for x0 = {_vector(x0[i])}, x1 = {_vector(x1[i])}", {
                 "x0 - x1 points from the data back to the noise; the velocity is d x_t / dt.": x0 - x1,
                 "that is the midpoint of the pair, not its velocity: differentiate x_t with respect to t.":
                     0.5 * (x0 + x1),
                 "that is the data point itself; the velocity is the difference of the two end points.": x1,
             }, "differentiate x_t = (1 - t) x0 + t x1 with respect to t.")
    print("Correct: interpolate_point and target_velocity match the straight path on 256 pairs.")


# ----------------------------------------------------------------------------- exercise 4

def check_loss(fm_loss) -> None:
    """Exercise 4: ``fm_loss(model, x0, x1, t)`` -> a scalar tensor (the flow matching loss).

    Compared with ``paths.flow_matching_loss`` on ``LinearProbe``, a model with fixed parameters.
    """
    _require_callable("fm_loss", fm_loss)
    model = LinearProbe()
    x0, x1, t = _fixed_pairs(128, seed=1)
    value = _call("fm_loss", fm_loss, model, x0.clone(), x1.clone(), t.clone())
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        _fail("fm_loss returned the wrong kind of value", "a scalar torch.Tensor", _short(value),
              "return the mean squared error as a tensor (not .item()), so that loss.backward() works.")
    if not value.requires_grad:
        _fail("fm_loss returned a tensor that autograd cannot differentiate",
              "a loss that depends on the model's parameters", "a tensor with requires_grad=False",
              "do not use torch.no_grad(), .detach() or .item() inside the loss.")
    _check_finite("fm_loss", value.detach())
    received = float(value.detach())
    expected = float(flow_matching_loss(model, x0, x1, t).detach())
    if not math.isclose(received, expected, rel_tol=RTOL, abs_tol=1e-6):
        with torch.no_grad():
            x_t, u = interpolate(x0, x1, t), conditional_velocity(x0, x1)
            mistakes = {
                "the target is x0 - x1, which points backwards; the target is x1 - x0.":
                    ((model(x_t, t) + u) ** 2).mean(),
                "the model must see the point on the path x_t, not the noise x0.": ((model(x0, t) - u) ** 2).mean(),
                "the model must see the point on the path x_t, not the data x1.": ((model(x1, t) - u) ** 2).mean(),
                "that is a sum over the batch; the loss is a mean (use .mean() or F.mse_loss).":
                    ((model(x_t, t) - u) ** 2).sum(),
                "that averages over points but sums the two coordinates; take the mean over both.":
                    ((model(x_t, t) - u) ** 2).sum(dim=1).mean(),
                "the model was given 1 - t instead of t.": ((model(x_t, 1 - t) - u) ** 2).mean(),
            }
        hint = next((h for h, v in mistakes.items() if math.isclose(received, float(v), rel_tol=RTOL)),
                    "loss = mean of (model(x_t, t) - (x1 - x0))^2 with x_t from your interpolate_point.")
        _fail("fm_loss gives the wrong value on a fixed model and batch", f"{expected:.5f}", f"{received:.5f}", hint)
    print("Correct: fm_loss matches the flow matching loss and can be backpropagated.")


# ----------------------------------------------------------------------------- exercise 7

def check_euler(euler_step_fn, euler_sample) -> None:
    """Exercise 7: ``euler_step(velocity, x, t, h)`` and ``euler_sample(velocity, n_samples, n_steps, seed)``.

    The step is compared with ``solvers.euler_step``; the sampler must return the whole
    trajectory (n_steps + 1, n_samples, 2), starting at ``sample_base('gaussian', n_samples,
    seed=seed)``, and agree with ``solvers.solve_ode``. Both on a known field (``SpiralField``).
    """
    _require_callable("euler_step", euler_step_fn)
    _require_callable("euler_sample", euler_sample)
    field = SpiralField()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    t, h = 0.3, 0.25
    with torch.no_grad():
        received = _as_tensor("euler_step", _call("euler_step", euler_step_fn, field, x.clone(), t, h), x.shape)
    where = lambda i: f"for t = {t}, h = {h}, x = {_vector(x[i])}"  # noqa: E731
    _compare("euler_step", received, euler_step(field, x, t, h), where, {
        "you evaluated the field at the end of the step (time t + h); Euler uses the start, v(x, t).":
            x + h * field(x, t + h),
        "you evaluated the field at an Euler guess of the end of the step; plain Euler uses v(x, t).":
            x + h * field(x + h * field(x, t), t + h),
        "the step must be scaled by h: x + h v(x, t).": x + field(x, t),
        "the sign is flipped: the sampler moves along the velocity, x + h v(x, t).": x - h * field(x, t),
        "that is the midpoint method; this exercise asks for the plain Euler step.":
            x + h * field(x + 0.5 * h * field(x, t), t + 0.5 * h),
    }, "new x = x + h * velocity(x, t).")

    n_samples, n_steps, seed = 32, 8, 5
    with torch.no_grad():
        trajectory = _call("euler_sample", euler_sample, field, n_samples, n_steps, seed)
    trajectory = _as_tensor("euler_sample", trajectory, (n_steps + 1, n_samples, 2))
    x0 = sample_base("gaussian", n_samples, seed=seed)
    start = trajectory[0]
    if not _close(start, x0):
        radius = float(start.norm(dim=1).mean())
        if abs(radius - RING_RADIUS) < 0.5:
            hint = (f"the first points lie on the ring (mean radius {radius:.2f}): that is the data. "
                    f"A sampler starts from the base distribution and flows to the data.")
        else:
            hint = (f"start from x0 = sample_base('gaussian', n_samples, seed=seed) so the check can "
                    f"reproduce your draw (your start has mean radius {radius:.2f}).")
        _fail("euler_sample starts from the wrong points", f"x0[0] = {_vector(x0[0])}",
              f"trajectory[0][0] = {_vector(start[0])}", hint)
    with torch.no_grad():
        reference = solve_ode(field, x0, n_steps=n_steps, method="euler", return_trajectory=True).trajectory
        backwards = solve_ode(field, x0, n_steps=n_steps, method="euler", t0=1.0, t1=0.0,
                              return_trajectory=True).trajectory
    if not _close(trajectory, reference):
        k = next(k for k in range(n_steps + 1) if not _close(trajectory[k], reference[k]))
        hints = {
            "time runs backwards: integrate from t = 0 (noise) to t = 1 (data)": backwards,
            "the field is evaluated at the end of each step; use t = k h at step k = 0 .. n_steps - 1":
                solve_ode(field, x0, n_steps=n_steps, t0=1 / n_steps, t1=1 + 1 / n_steps,
                          return_trajectory=True).trajectory,
        }
        hint = next((h + "." for h, ref in hints.items() if _close(trajectory, ref)),
                    "use h = 1 / n_steps and times t = 0, h, 2h, ..., (n_steps - 1) h; keep x0 as trajectory[0].")
        _fail(f"euler_sample's trajectory is wrong at index {k} (t = {k / n_steps:.3f})",
              f"first point {_vector(reference[k][0])}", f"{_vector(trajectory[k][0])}", hint)
    print("Correct: euler_step and euler_sample match the reference Euler solver.")


# ----------------------------------------------------------------------------- exercise 9

def check_rk4(rk4_step_fn) -> None:
    """Exercise 9: ``rk4_step(velocity, x, t, h)``, compared with ``solvers.rk4_step``.

    Uses a large step (h = 0.5) on ``SpiralField`` so that every coefficient matters.
    """
    _require_callable("rk4_step", rk4_step_fn)
    field = SpiralField()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    t, h = 0.2, 0.5
    with torch.no_grad():
        received = _as_tensor("rk4_step", _call("rk4_step", rk4_step_fn, field, x.clone(), t, h), x.shape)
    k1 = field(x, t)
    k2 = field(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = field(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = field(x + h * k3, t + h)
    k2_at_t = field(x + 0.5 * h * k1, t)                  # the middle slopes taken at t, not t + h/2
    k3_at_t = field(x + 0.5 * h * k2_at_t, t)
    where = lambda i: f"for t = {t}, h = {h}, x = {_vector(x[i])}"  # noqa: E731
    _compare("rk4_step", received, rk4_step(field, x, t, h), where, {
        "the weights are 1, 2, 2, 1 divided by 6; you weighted the four slopes equally.":
            x + h / 4 * (k1 + k2 + k3 + k4),
        "the middle slopes k2 and k3 are taken at time t + h/2, not t.":
            x + h / 6 * (k1 + 2 * k2_at_t + 2 * k3_at_t + field(x + h * k3_at_t, t + h)),
        "k3 must start from k2 (x + h/2 k2), not from k1.":         # then k3 equals k2
            x + h / 6 * (k1 + 4 * k2 + field(x + h * k2, t + h)),
        "the last slope k4 is taken at x + h k3, the end of the step.":
            x + h / 6 * (k1 + 2 * k2 + 2 * k3 + field(x + h * k2, t + h)),
        "that is the midpoint method (two slopes); RK4 combines four.": x + h * k2,
        "that is a plain Euler step.": x + h * k1,
        "the step must be scaled by h: x + h/6 (k1 + 2 k2 + 2 k3 + k4).": x + (k1 + 2 * k2 + 2 * k3 + k4) / 6,
    }, "k1 = v(x, t), k2 = v(x + h/2 k1, t + h/2), k3 = v(x + h/2 k2, t + h/2), k4 = v(x + h k3, t + h).")
    print("Correct: rk4_step matches the classical fourth-order Runge-Kutta step.")


# ----------------------------------------------------------------------------- exercise 12

def check_conditional_sampling(sample_mode, model, modes=(0, 3, 6), n_samples: int = 200,
                               n_steps: int = 20, seed: int = 7) -> None:
    """Exercise 12: ``sample_mode(model, mode, n_samples, n_steps, seed)`` -> (n_samples, 2).

    ``model`` is a one-hot conditional model (``ConditionalVelocityField``). The answer must
    start from ``sample_base('gaussian', n_samples, seed=seed)`` and follow the field with the
    one-hot code of ``mode`` for ``n_steps`` Euler steps, as ``solvers.generate`` does.
    """
    _require_callable("sample_mode", sample_mode)
    n_classes = getattr(model, "condition_dim", 0)
    if getattr(model, "condition_kind", None) != "onehot":
        raise TypeError(f"model must be a one-hot conditional model (ConditionalVelocityField), "
                        f"got {type(model).__name__}")
    centers = torch.from_numpy(ring_mode_centers(n_classes, RING_RADIUS))
    for mode in modes:
        code = class_code(mode, n_classes)
        with torch.no_grad():
            received = _call("sample_mode", sample_mode, model, mode, n_samples, n_steps, seed)
            expected = generate(model, n_samples, base="gaussian", n_steps=n_steps, condition=code, seed=seed).x.cpu()
        received = _as_tensor("sample_mode", received, (n_samples, 2))
        if _close(received, expected, atol=1e-3):
            continue
        distance, nearest = distance_to_nearest_mode(received, n_classes, RING_RADIUS)
        close = distance <= 3 * RING_STD
        hit = float((close & (nearest == mode)).mean())
        counts = torch.bincount(torch.from_numpy(nearest[close]), minlength=n_classes)
        landed = f"{100 * hit:.0f}% at mode {mode}"
        if int(counts.sum()) > n_samples // 2 and int(counts.argmax()) != mode:
            landed += f", most at mode {int(counts.argmax())}"
        elif int(counts.sum()) <= n_samples // 2:
            landed += f", {100 * float(1 - close.mean()):.0f}% far from every mode"
        if hit > 0.5:
            hint = ("the mode is right but the points are not the reference's: start from "
                    "sample_base('gaussian', n_samples, seed=seed) and take exactly n_steps Euler steps "
                    "from t = 0 to 1.")
        else:
            hint = (f"condition on the one-hot code of mode {mode}, "
                    f"one_hot(torch.tensor([{mode}]), {n_classes}).float(), at every step.")
        _fail(f"sample_mode(mode={mode}) gives the wrong samples",
              f"samples near the centre {_vector(centers[mode])} (first sample {_vector(expected[0])})",
              f"{landed} (first sample {_vector(received[0])})", hint)
    print(f"Correct: sample_mode draws the requested modes {list(modes)} exactly like the reference sampler.")


# ----------------------------------------------------------------------------- exercise 10

def fewest_good_steps(step_counts, fractions, tolerance: float = 0.01) -> int:
    """The smallest step count whose off-mode fraction is within ``tolerance`` of the last one's."""
    return next(k for k, f in zip(step_counts, fractions) if f <= fractions[-1] + tolerance)


def check_step_study(off_mode_by_steps, fewest_steps, model, step_counts=(1, 2, 4, 8, 16, 32, 64),
                     n_samples: int = 1000, seed: int = 0) -> None:
    """Exercise 10: ``off_mode_by_steps(model, step_counts, n_samples, seed)`` -> list of fractions,
    and ``fewest_steps``: the smallest count within one percentage point of the largest count's.

    The fractions are compared (within 0.003, three samples in a thousand) with Euler sampling
    by ``solvers.generate`` from ``seed`` and ``metrics.off_mode_fraction``.
    """
    _require_callable("off_mode_by_steps", off_mode_by_steps)
    step_counts = list(step_counts)
    with torch.no_grad():
        received = _call("off_mode_by_steps", off_mode_by_steps, model, step_counts, n_samples, seed)
        expected = [off_mode_fraction(generate(model, n_samples, n_steps=k, seed=seed).x) for k in step_counts]
    try:
        received = [float(f) for f in received]
    except (TypeError, ValueError):
        _fail("off_mode_by_steps returned the wrong type", f"a list of {len(step_counts)} fractions",
              _short(received), "return one float per step count, in the order of step_counts.")
    if len(received) != len(step_counts):
        _fail("off_mode_by_steps returned the wrong number of values", f"{len(step_counts)} (one per step count)",
              f"{len(received)}", "loop over step_counts and append one fraction for each.")
    _check_finite("off_mode_by_steps", torch.tensor(received))
    shown = ", ".join(f"{k}: {f:.3f}" for k, f in zip(step_counts, expected))
    got = ", ".join(f"{k}: {f:.3f}" for k, f in zip(step_counts, received))
    if any(abs(a - b) > 0.003 for a, b in zip(received, expected)):
        if all(0 <= f <= 100 for f in received) and all(abs(a / 100 - b) <= 0.003 for a, b in zip(received, expected)):
            hint = "those are percentages; return fractions between 0 and 1."
        elif all(abs(a - b) <= 0.003 for a, b in zip(received, expected[::-1])):
            hint = "the values are in reverse order; keep the order of step_counts."
        elif max(received) - min(received) < 1e-9:
            hint = "every step count gives the same number: pass n_steps=k to the sampler in your loop."
        else:
            hint = ("sample n_samples points from seed with n_steps Euler steps each time "
                    "(generate(model, n_samples, n_steps=k, seed=seed).x) and score them with off_mode_fraction.")
        _fail("off_mode_by_steps gives the wrong fractions", f"{{{shown}}}", f"{{{got}}}", hint)
    answer = fewest_good_steps(step_counts, expected)
    if fewest_steps != answer:
        _fail("fewest_steps is not the smallest good step count", f"{answer}", _short(fewest_steps),
              f"pick the first count whose fraction is at most {expected[-1]:.3f} + 0.010 "
              f"(the fraction at {step_counts[-1]} steps plus one percentage point).")
    print(f"Correct: off-mode fractions match for {step_counts} steps; {answer} steps are enough.")


# ----------------------------------------------------------------------------- exercise 5

_LOSS_FLOOR_HINTS = {
    "a": "a much larger network keeps the same floor; the floor does not depend on the model.",
    "b": "even the best possible predictor has this loss, so no amount of training removes it.",
    "d": "training never runs the ODE solver; the loss uses single points x_t, not sampled trajectories.",
}
_LOSS_FLOOR_ANSWER = "c"


def data_variance_floor(n_samples: int = 200_000, seed: int = 0) -> float:
    """Loss of the best predictor at t = 0: the data's variance averaged over the two coordinates."""
    points = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0]).double()
    return float(points.var(dim=0, unbiased=False).mean())


def check_loss_floor(answer, floor_at_t0) -> None:
    """Exercise 5: the multiple-choice ``answer`` ('a'..'d') to why the loss stays above zero, and
    ``floor_at_t0``: the loss the best possible predictor still has at t = 0 (a number).

    For the ring, that floor is the data's variance per coordinate, R^2 / 2 + sigma^2 = 4.5625.
    """
    choice = _check_choice("ANSWER", answer, _LOSS_FLOOR_ANSWER, _LOSS_FLOOR_HINTS,
                           "the choice that explains a floor for every model")
    exact = RING_RADIUS ** 2 / 2 + RING_STD ** 2
    try:
        value = float(floor_at_t0)
    except (TypeError, ValueError):
        _fail("floor_at_t0 is not a number", f"about {exact:.3f}", _short(floor_at_t0),
              "compute the loss of the prediction mean(x1) - x0 on many pairs and return it as a float.")
    if not abs(value - exact) <= 0.05 * exact:
        mistakes = {
            "that is zero, but at t = 0 the point x_t = x0 carries no information about x1.": 0.0,
            "that is the variance of the noise x0; the unknown part of x1 - x0 is x1, so use the data's variance.": 1.0,
            "that sums the two coordinates; the MSE loss averages them.": 2 * exact,
            "that is the variance plus the noise's variance; the best prediction E[x1] - x0 already knows x0.":
                exact + 1.0,
        }
        hint = next((h for h, v in mistakes.items() if abs(value - v) <= 0.05 * max(v, 1.0)),
                    "at t = 0 the best prediction is mean(x1) - x0; its squared error averages to Var(x1) "
                    "per coordinate.")
        _fail("floor_at_t0 is off", f"about {exact:.3f}", f"{value:.3f}", hint)
    print(f"Correct: ({choice}) and the floor at t = 0 is about {exact:.2f}, whatever the network.")


# ----------------------------------------------------------------------------- exercise 15

def check_ot_pairing(ot_pairing, n: int = 64, seed: int = 8) -> None:
    """Exercise 15: ``ot_pairing(x0, x1)`` -> x0 re-ordered (n, 2) so row i is paired with x1[i].

    The answer must be a permutation of x0's rows whose total squared distance to x1 equals
    that of ``couplings.minibatch_ot_coupling`` (exact OT).
    """
    _require_callable("ot_pairing", ot_pairing)
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0])
    received = _as_tensor("ot_pairing", _call("ot_pairing", ot_pairing, x0.clone(), x1.clone()), x0.shape)

    def cost(paired):
        return float(((paired.double() - x1.double()) ** 2).sum(dim=1).mean())

    optimal, identity = cost(minibatch_ot_coupling(x0, x1)), cost(x0)
    if _close(received, x1):
        _fail("ot_pairing returned x1", "the rows of x0, re-ordered", "x1 itself (each point paired with itself)",
              "return x0[permutation], where permutation[i] is the noise point assigned to x1[i].")
    distances = torch.cdist(received.double(), x0.double())
    nearest = distances.argmin(dim=1)
    if not bool((distances.min(dim=1).values < ATOL).all()) or len(torch.unique(nearest)) != n:
        _fail("ot_pairing did not return a permutation of x0", f"each of the {n} rows of x0 exactly once",
              f"{len(torch.unique(nearest[distances.min(dim=1).values < ATOL]))} distinct rows of x0",
              "every noise point must be used once: a pairing is a permutation, not a nearest-neighbour lookup.")
    received_cost = cost(received)
    if not math.isclose(received_cost, optimal, rel_tol=RTOL, abs_tol=1e-6):
        hint = ("that is the unchanged order, i.e. random pairs; reorder x0 to minimise the total squared distance."
                if math.isclose(received_cost, identity, rel_tol=RTOL) else
                "solve the assignment problem exactly, e.g. with scipy.optimize.linear_sum_assignment on the "
                "(n, n) matrix of squared distances, or ot.emd; check which index belongs to x0 and which to x1.")
        _fail("ot_pairing is not optimal", f"mean squared pair distance {optimal:.4f}",
              f"{received_cost:.4f} (random pairs: {identity:.4f})", hint)
    print(f"Correct: ot_pairing is optimal (mean squared distance {optimal:.3f}, random pairs {identity:.3f}).")


# ----------------------------------------------------------------------------- exercise 2

def check_field_ends(field_at_0, field_at_1, model) -> None:
    """Exercise 2: ``field_at_0(x)`` and ``field_at_1(x)``, predictions of the exact marginal field
    u_t(x) = E[x1 - x0 | x_t = x] at t = 0 and t = 1: (B, 2) -> (B, 2).

    Compared with ``RingMarginalField`` (-x and x for this data); the line printed on success says
    how far the trained ``model`` is from them where it is used (base points at t = 0, data at t = 1).
    """
    _require_callable("field_at_0", field_at_0)
    _require_callable("field_at_1", field_at_1)
    exact = RingMarginalField()
    x = 4 * torch.rand(256, 2, generator=torch.Generator().manual_seed(20)) - 2          # a square around 0
    centers = torch.from_numpy(ring_mode_centers()).float()
    nearest = centers[torch.cdist(x, centers).argmin(dim=1)]
    on_ring = RING_RADIUS * x / x.norm(dim=1, keepdim=True)
    for name, fn, t in (("field_at_0", field_at_0, 0.0), ("field_at_1", field_at_1, 1.0)):
        received = _as_tensor(name, _call(name, fn, x.clone()), x.shape)
        _compare(name, received, exact(x, t), lambda i: f"at x = {_vector(x[i])}", {
            "that points from x to the nearest mode; at t = 0 x says nothing about which mode x1 is in, "
            "so the field averages over all modes.": nearest - x,
            "that points at the ring, radially; but the average over the eight modes of x1 is the centre, "
            "E[x1] = 0.": on_ring - x,
            "the sign is flipped: at t = 0 the field is E[x1] - x, at t = 1 it is x - E[x0].": -exact(x, t),
            "that is zero everywhere; average x1 - x0 given x_t = x: one of the two is known (x), the other "
            "averages to 0.": torch.zeros_like(x),
        }, "at t = 0, x_t = x0 = x and x1 is unknown (average E[x1]); at t = 1, x_t = x1 = x and x0 is unknown.")
    with torch.no_grad():
        x0 = sample_base("gaussian", 2000, seed=21)
        x1 = torch.from_numpy(create_ring_gaussians(2000, seed=22)[0])
        off_0 = float((model(x0, 0.0) + x0).norm(dim=1).mean())
        off_1 = float((model(x1, 1.0) - x1).norm(dim=1).mean())
    print(f"Correct: u_0(x) = -x and u_1(x) = x; the trained model is off by {off_0:.2f} at t = 0 "
          f"(|x| averages {float(x0.norm(dim=1).mean()):.2f}) and by {off_1:.2f} at t = 1 "
          f"(|x| averages {float(x1.norm(dim=1).mean()):.2f}).")


# ----------------------------------------------------------------------------- exercise 3

def check_marginal_velocity(marginal_velocity, times=(0.1, 0.5, 0.9)) -> None:
    """Exercise 3: ``marginal_velocity(x, t)`` -> u_t(x): x (B, 2), t a float -> (B, 2).

    Compared (within 1e-3) with ``marginal_field.RingMarginalField`` at 128 points and three times.
    """
    _require_callable("marginal_velocity", marginal_velocity)
    exact = RingMarginalField()
    mu = exact.centers.float()                                                       # (K, 2)
    s2 = RING_STD ** 2
    x = 8 * torch.rand(128, 2, generator=torch.Generator().manual_seed(30)) - 4

    def variant(t, var, weight_var, centre_scale, slope):
        squared = ((x[:, None] - centre_scale * mu[None]) ** 2).sum(dim=2)
        weights = torch.softmax(-squared / (2 * weight_var), dim=1) if weight_var else torch.full_like(squared, 1 / 8)
        per_mode = mu[None] + slope * (x[:, None] - t * mu[None])
        return (weights[:, :, None] * per_mode).sum(dim=1)

    for t in times:
        received = _as_tensor("marginal_velocity", _call("marginal_velocity", marginal_velocity, x.clone(), t), x.shape)
        var, c = (1 - t) ** 2 + t ** 2 * s2, t * s2 - (1 - t)
        expected = exact(x, t).float()
        mistakes = {
            "the weights are equal for every mode; weight mode k by how likely it is to have produced x, "
            "w_k proportional to exp(-|x - t mu_k|^2 / (2 var_t)).": variant(t, var, 0, t, c / var),
            "the weights use variance 1; x_t given mode k has variance var_t = (1 - t)^2 + t^2 s^2.":
                variant(t, var, 1.0, t, c / var),
            "the weights compare x with mu_k; at time t mode k sits at t mu_k.": variant(t, var, var, 1.0, c / var),
            "each mode's velocity is mu_k + (c_t / var_t)(x - t mu_k); you left out the correction term.":
                variant(t, var, var, t, 0.0),
            "the softmax lost the factor 1/2: w_k proportional to exp(-|x - t mu_k|^2 / (2 var_t)).":
                variant(t, var / 2, var / 2, t, c / var),
        }
        if not _close(received, expected, atol=1e-3):
            i = int(torch.nonzero(((received - expected).abs() > 1e-3).any(dim=1))[0, 0])
            hint = next((h for h, v in mistakes.items() if _close(received, v, atol=1e-3)),
                        "u_t(x) = sum_k w_k(x) [mu_k + (c_t / var_t)(x - t mu_k)] with softmax weights w_k.")
            _fail(f"marginal_velocity is wrong at t = {t}, x = {_vector(x[i])}", _vector(expected[i]),
                  _vector(received[i]), hint)
    print(f"Correct: marginal_velocity equals the exact u_t(x) at 128 points and t = {list(times)}.")


# ----------------------------------------------------------------------------- exercise 6

TRAINING_BUDGET = 2000          # steps the training exercise may take
OFF_MODE_THRESHOLD = 0.10       # the share off every mode the trained model must stay under


def check_trained_model(model, losses, n_samples: int = 1000, n_steps: int = 50, seed: int = 1) -> None:
    """Exercise 6: a model trained with the student's loss in at most ``TRAINING_BUDGET`` steps.

    ``losses``: the loss of every step. Passes when ``n_samples`` Euler samples (``n_steps`` steps,
    Gaussian base) have at most ``OFF_MODE_THRESHOLD`` off every mode and no mode far from its share
    (``metrics.ring_quality``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be the torch.nn.Module you trained, got {_short(model)}")
    try:
        losses = [float(v) for v in losses]
    except (TypeError, ValueError):
        _fail("losses is not a list of numbers", "one float per training step", _short(losses),
              "append loss.item() after every step and return the list.")
    if not 0 < len(losses) <= TRAINING_BUDGET:
        _fail("the training budget is exceeded", f"at most {TRAINING_BUDGET} steps", f"{len(losses)} steps",
              "reach the threshold with fewer steps: a learning rate that decays to 0 settles the field sooner.")
    with torch.no_grad():
        samples = _call("sampling your model", generate, model, n_samples, n_steps=n_steps, seed=seed).x
    if not bool(torch.isfinite(samples).all()):
        _fail("the trained model's samples are NaN or inf", "finite samples",
              f"{int((~torch.isfinite(samples).all(dim=1)).sum())} of {n_samples} samples NaN or inf",
              "the training diverged: lower the learning rate, and check that the loss is a mean, not a sum.")
    # Looser than Quality.as_good_as_data: a student's 2000-step run is judged on its mode balance
    # (the yardstick's own test) and a wider off-mode limit, not on the shipped models' bar.
    quality = ring_quality(samples)
    if quality.off_mode_fraction > OFF_MODE_THRESHOLD or quality.odd_modes:
        early, late = sum(losses[:50]) / len(losses[:50]), sum(losses[-50:]) / len(losses[-50:])
        if late > 0.95 * early:
            hint = (f"the loss hardly fell ({early:.2f} -> {late:.2f}): each step needs optimizer.zero_grad(), "
                    f"loss.backward() and optimizer.step().")
        else:
            hint = ("the loss fell, but the field is wrong or unsettled: check that your loss is the one of "
                    "exercise 4 (target x1 - x0, model at x_t), then train for the whole budget with a decaying "
                    "learning rate.")
        _fail("the trained model's samples are not good enough",
              f"at most {100 * OFF_MODE_THRESHOLD:.0f}% off every mode and every mode near its share",
              str(quality), hint)
    print(f"Correct: in {len(losses)} steps, {100 * quality.off_mode_fraction:.1f}% off every mode "
          f"(threshold {100 * OFF_MODE_THRESHOLD:.0f}%, data {100 * math.exp(-4.5):.1f}%), every mode near its share.")


# ----------------------------------------------------------------------------- exercise 8

def check_one_step(one_step_endpoint, off_mode_prediction, model) -> None:
    """Exercise 8: ``one_step_endpoint(x0)`` -> where one Euler step of size 1 along the exact field
    sends x0 (B, 2), and ``off_mode_prediction``: the share of such samples off every mode.

    The printed line compares both with one Euler step of the trained ``model``.
    """
    _require_callable("one_step_endpoint", one_step_endpoint)
    x0 = sample_base("gaussian", 256, seed=40)
    received = _as_tensor("one_step_endpoint", _call("one_step_endpoint", one_step_endpoint, x0.clone()), x0.shape)
    expected = x0 + RingMarginalField()(x0, 0.0)
    _compare("one_step_endpoint", received, expected, lambda i: f"for x0 = {_vector(x0[i])}", {
        "that is x0 itself: the step does move, by h u_0(x0) with h = 1.": x0,
        "the field at t = 0 is -x0, so the step adds -x0: x0 + 1 * (-x0).": 2 * x0,
        "that is where the step would go if the field pointed at the ring; u_0(x) = -x points at the centre.":
            RING_RADIUS * x0 / x0.norm(dim=1, keepdim=True),
    }, "one Euler step from t = 0 with h = 1: x0 + 1 * u_0(x0), with u_0 from exercise 2.")
    try:
        share = float(off_mode_prediction)
    except (TypeError, ValueError):
        _fail("ONE_STEP_OFF_MODE is not a number", "a fraction between 0 and 1", _short(off_mode_prediction),
              "give the share as a float, e.g. 0.25.")
    if not 0 <= share <= 1:
        _fail("ONE_STEP_OFF_MODE is not a fraction", "a number between 0 and 1", _short(off_mode_prediction),
              "give the share as a fraction: 30% is 0.3.")
    with torch.no_grad():
        x = sample_base("gaussian", 1000, seed=41)
        landed = x + model(x, 0.0)
    measured = off_mode_fraction(landed)
    if share < 0.9:
        hint = ("that is the data's own rate; " if abs(share - math.exp(-4.5)) < 0.01 else "") + \
            f"the centre is {RING_RADIUS:.0f} from every mode, {RING_RADIUS / RING_STD:.0f} standard deviations."
        _fail("ONE_STEP_OFF_MODE is too low", "almost every sample off every mode (above 0.9)", f"{share:.3f}", hint)
    print(f"Correct: one step sends every sample to about 0; the trained model's one-step samples sit "
          f"{float(landed.norm(dim=1).mean()):.2f} from the centre on average, {100 * measured:.0f}% off every mode.")


# ----------------------------------------------------------------------------- exercise 11

_INVERSION_HINTS = {
    "a": "the ancestral sampler draws fresh noise at every step, so the sample does not determine the start.",
    "c": "more steps do not help: the injected noise is not stored in the sample.",
    "d": "the trouble is not the network: randomness is added along the way, not only at the start.",
}


def check_encode(encode, answer, model, n_samples: int = 200, n_steps: int = 20, seed: int = 50) -> None:
    """Exercise 11: ``encode(velocity, x1, n_steps)`` -> x0: (B, 2), Euler from t = 1 back to t = 0,
    compared with ``solve_ode(..., t0=1, t1=0)``; ``answer``: why a diffusion sample cannot be encoded."""
    _require_callable("encode", encode)
    x1 = torch.from_numpy(create_ring_gaussians(n_samples, seed=seed)[0])
    with torch.no_grad():
        received = _as_tensor("encode", _call("encode", encode, model, x1.clone(), n_steps), x1.shape)
        expected = solve_ode(model, x1, n_steps=n_steps, t0=1.0, t1=0.0).x
        h = 1.0 / n_steps
        forwards = solve_ode(model, x1, n_steps=n_steps).x
        wrong_times = x1.clone()
        for k in range(n_steps):
            wrong_times = wrong_times - h * model(wrong_times, k * h)
    _compare("encode", received, expected, lambda i: f"for x1 = {_vector(x1[i])}", {
        "that integrates forwards from t = 0 to 1 again; encoding runs from t = 1 back to t = 0.": forwards,
        "the steps go backwards but the field is read at t = 0, h, 2h, ...; read it at t = 1, 1 - h, ...":
            wrong_times,
        "that is x1 unchanged: take n_steps steps of size -1 / n_steps.": x1,
    }, "start at x1, t = 1 and take n_steps Euler steps x <- x - h v(x, t), t <- t - h, with h = 1 / n_steps.")
    _check_choice("DIFFUSION_ANSWER", answer, "b", _INVERSION_HINTS,
                  "the choice that names what a diffusion sampler adds on the way")
    with torch.no_grad():
        back = solve_ode(model, expected, n_steps=n_steps).x
    print(f"Correct: encode runs the flow backwards; decoding its x0 again lands "
          f"{float((back - x1).norm(dim=1).mean()):.3f} from x1 on average ({n_steps} Euler steps each way).")


# ----------------------------------------------------------------------------- exercise 13

_GUIDANCE_HINTS = {
    "a": "that is w = 0: the unconditional field, which spreads samples over all modes.",
    "b": "that is w = 1, the plain conditional model; w > 1 goes further along v_cond - v_uncond.",
    "d": "the difference v_cond - v_uncond points towards the requested mode and away from the rest, "
         "not to the centre.",
}


def check_guidance(guided_velocity, answer, model, scales=(0.0, 1.0, 3.5)) -> None:
    """Exercise 13: ``guided_velocity(model, code, w)`` -> a function ``velocity(x, t)`` equal to
    v_uncond + w (v_cond - v_uncond) (``guidance.GuidedVelocity``), and ``answer``: what a large w does."""
    _require_callable("guided_velocity", guided_velocity)
    if getattr(model, "condition_kind", None) != "onehot":
        raise TypeError(f"model must be a one-hot conditional model, got {type(model).__name__}")
    generator = torch.Generator().manual_seed(60)
    x, t = 3 * torch.randn(64, 2, generator=generator), 0.4
    code = class_code([2], model.condition_dim)
    with torch.no_grad():
        v_cond, v_uncond = model(x, t, code), model(x, t, torch.zeros_like(code))
        for w in scales:
            velocity = _call("guided_velocity", guided_velocity, model, code, w)
            _require_callable("guided_velocity(...)", velocity)
            name = "guided_velocity(model, code, w)(x, t)"
            received = _as_tensor(name, _call(name, velocity, x.clone(), t), x.shape)
            expected = GuidedVelocity(model, code, w)(x, t)
            where = lambda i: f"at t = {t}, x = {_vector(x[i])}"  # noqa: E731
            _compare(f"the guided field for w = {w}", received, expected, where, {
                "the two fields are swapped: start from v_uncond and move w times towards v_cond.":
                    v_cond + w * (v_uncond - v_cond),
                "that is w v_cond alone; guidance scales the difference v_cond - v_uncond.": w * v_cond,
                "start from v_uncond, not v_cond: v_uncond + w (v_cond - v_uncond).": v_cond + w * (v_cond - v_uncond),
            }, "v = v_uncond + w (v_cond - v_uncond), with v_uncond = model(x, t, zero code).")
    _check_choice("LARGE_W_ANSWER", answer, "c", _GUIDANCE_HINTS, "what w well above 1 does to the samples")
    print(f"Correct: the guided field matches v_uncond + w (v_cond - v_uncond) for w = {list(scales)}.")


# ----------------------------------------------------------------------------- exercise 14

def check_extrapolation(seen_range, flag_extrapolation, training_radii, requested) -> None:
    """Exercise 14: ``seen_range(radii)`` -> (low, high), the 1st and 99th percentile of the training
    radii, and ``flag_extrapolation(requested, low, high)`` -> one bool per requested radius."""
    import numpy as np

    _require_callable("seen_range", seen_range)
    _require_callable("flag_extrapolation", flag_extrapolation)
    radii = np.asarray(training_radii, dtype=np.float64)
    expected = np.percentile(radii, [1, 99])
    try:
        low, high = (float(v) for v in _call("seen_range", seen_range, radii.copy()))
    except (TypeError, ValueError):
        _fail("seen_range returned the wrong kind of value", "two numbers (low, high)", "something else",
              "return np.percentile(radii, 1), np.percentile(radii, 99).")
    if not np.allclose([low, high], expected, atol=1e-3):
        mistakes = {
            "that is the smallest and largest radius: one straggler decides the range, and radii the model "
            "saw a handful of times count as inside.": (radii.min(), radii.max()),
            "np.percentile takes percents (1 and 99), np.quantile takes fractions (0.01 and 0.99).":
                tuple(np.percentile(radii, [0.01, 0.99])),
            "that is the 5th to 95th percentile; this exercise asks for the 1st to 99th.":
                tuple(np.percentile(radii, [5, 95])),
        }
        hint = next((h for h, v in mistakes.items() if np.allclose([low, high], v, atol=1e-3)),
                    "low = the 1st percentile of the training radii, high = the 99th.")
        _fail("seen_range is wrong", f"({expected[0]:.3f}, {expected[1]:.3f})", f"({low:.3f}, {high:.3f})", hint)
    requested = [float(r) for r in requested]
    want = [not (expected[0] <= r <= expected[1]) for r in requested]
    try:
        flags = [bool(f) for f in _call("flag_extrapolation", flag_extrapolation, list(requested), float(expected[0]),
                                        float(expected[1]))]
    except TypeError:
        _fail("flag_extrapolation returned the wrong kind of value", f"{len(requested)} booleans",
              "something that is not a list", "return one True (outside) or False (inside) per requested radius.")
    if flags != want:
        hint = ("the flags are inverted: True means outside the range (extrapolation)."
                if flags == [not f for f in want] else
                "True for every radius below low or above high, False for those in between.")
        _fail(f"flag_extrapolation is wrong for the radii {requested}", str(want), str(flags), hint)
    print(f"Correct: seen radii {expected[0]:.2f} to {expected[1]:.2f}; outside them: "
          f"{[r for r, f in zip(requested, want) if f]}.")
