"""Checks for the exercises of notebooks/exercises/17_flow_matching_exercises.ipynb.

Each ``check_*`` function runs a student's answer on fixed inputs (fixed seeds, CPU tensors),
compares it with the package's own implementation (``paths``, ``solvers``, ``couplings``,
``metrics``) within a tolerance, and then either prints one short line starting with
``Correct:`` or raises an ``AssertionError`` whose message says what was expected, what was
received and, when the answer matches a typical mistake, which one. A stub that still raises
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
from .metrics import distance_to_nearest_mode, off_mode_fraction
from .paths import conditional_velocity, flow_matching_loss, interpolate
from .solvers import euler_step, generate, rk4_step, solve_ode

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


def _as_tensor(name: str, value, shape: tuple) -> torch.Tensor:
    """The student's result as a detached float CPU tensor of ``shape``, or a clear failure."""
    if not isinstance(value, torch.Tensor):
        _fail(f"{name} returned the wrong type", f"a torch.Tensor of shape {shape}", _short(value),
              "build the result from the input tensors with torch operations.")
    if tuple(value.shape) != tuple(shape):
        _fail(f"{name} returned the wrong shape", f"shape {tuple(shape)}", f"shape {tuple(value.shape)}",
              "keep one row per point; broadcasting t of shape (B, 1) against (B, 2) does this.")
    return value.detach().float().cpu()


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
    received = _as_tensor("interpolate_point", interpolate_point(x0.clone(), x1.clone(), t.clone()), x0.shape)
    _compare("interpolate_point", received, interpolate(x0, x1, t),
             lambda i: f"at t = {float(t[i]):.3f}, x0 = {_vector(x0[i])}, x1 = {_vector(x1[i])}", {
                 "this is t*x0 + (1-t)*x1, the path run backwards: at t = 0 the point must be x0 (noise).":
                     t * x0 + (1 - t) * x1,
                 "at t = 0.5 the point should be halfway, not the sum; use the weights (1 - t) and t.":
                     x0 + t * x1,
                 "the point should move from x0 towards x1 as t grows: x0 + t (x1 - x0).": x0 + t * (x0 - x1),
             }, "x_t = (1 - t) x0 + t x1 equals x0 at t = 0 and x1 at t = 1.")
    received = _as_tensor("target_velocity", target_velocity(x0.clone(), x1.clone()), x0.shape)
    _compare("target_velocity", received, conditional_velocity(x0, x1),
             lambda i: f"for x0 = {_vector(x0[i])}, x1 = {_vector(x1[i])}", {
                 "x0 - x1 points from the data back to the noise; the velocity is d x_t / dt.": x0 - x1,
                 "that is the midpoint of the pair, not its velocity: differentiate x_t with respect to t.":
                     0.5 * (x0 + x1),
                 "that is the data point itself; the velocity is the difference of the two end points.": x1,
             }, "differentiate x_t = (1 - t) x0 + t x1 with respect to t.")
    print("Correct: interpolate_point and target_velocity match the straight path on 256 pairs.")


# ----------------------------------------------------------------------------- exercise 2

def check_loss(fm_loss) -> None:
    """Exercise 2: ``fm_loss(model, x0, x1, t)`` -> a scalar tensor (the flow matching loss).

    Compared with ``paths.flow_matching_loss`` on ``LinearProbe``, a model with fixed parameters.
    """
    _require_callable("fm_loss", fm_loss)
    model = LinearProbe()
    x0, x1, t = _fixed_pairs(128, seed=1)
    value = fm_loss(model, x0.clone(), x1.clone(), t.clone())
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        _fail("fm_loss returned the wrong kind of value", "a scalar torch.Tensor", _short(value),
              "return the mean squared error as a tensor (not .item()), so that loss.backward() works.")
    if not value.requires_grad:
        _fail("fm_loss returned a tensor that autograd cannot differentiate",
              "a loss that depends on the model's parameters", "a tensor with requires_grad=False",
              "do not use torch.no_grad(), .detach() or .item() inside the loss.")
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


# ----------------------------------------------------------------------------- exercise 3

def check_euler(euler_step_fn, euler_sample) -> None:
    """Exercise 3: ``euler_step(velocity, x, t, h)`` and ``euler_sample(velocity, n_samples, n_steps, seed)``.

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
        received = _as_tensor("euler_step", euler_step_fn(field, x.clone(), t, h), x.shape)
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
        trajectory = euler_sample(field, n_samples, n_steps, seed)
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


# ----------------------------------------------------------------------------- exercise 4

def check_rk4(rk4_step_fn) -> None:
    """Exercise 4: ``rk4_step(velocity, x, t, h)``, compared with ``solvers.rk4_step``.

    Uses a large step (h = 0.5) on ``SpiralField`` so that every coefficient matters.
    """
    _require_callable("rk4_step", rk4_step_fn)
    field = SpiralField()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    t, h = 0.2, 0.5
    with torch.no_grad():
        received = _as_tensor("rk4_step", rk4_step_fn(field, x.clone(), t, h), x.shape)
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


# ----------------------------------------------------------------------------- exercise 5

def check_conditional_sampling(sample_mode, model, modes=(0, 3, 6), n_samples: int = 200,
                               n_steps: int = 20, seed: int = 7) -> None:
    """Exercise 5: ``sample_mode(model, mode, n_samples, n_steps, seed)`` -> (n_samples, 2).

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
        code = nn.functional.one_hot(torch.tensor(mode), n_classes).float()
        with torch.no_grad():
            received = sample_mode(model, mode, n_samples, n_steps, seed)
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


# ----------------------------------------------------------------------------- exercise 6

def fewest_good_steps(step_counts, fractions, tolerance: float = 0.01) -> int:
    """The smallest step count whose off-mode fraction is within ``tolerance`` of the last one's."""
    return next(k for k, f in zip(step_counts, fractions) if f <= fractions[-1] + tolerance)


def check_step_study(off_mode_by_steps, fewest_steps, model, step_counts=(1, 2, 4, 8, 16, 32, 64),
                     n_samples: int = 1000, seed: int = 0) -> None:
    """Exercise 6: ``off_mode_by_steps(model, step_counts, n_samples, seed)`` -> list of fractions,
    and ``fewest_steps``: the smallest count within one percentage point of the largest count's.

    The fractions are compared (within 0.003, three samples in a thousand) with Euler sampling
    by ``solvers.generate`` from ``seed`` and ``metrics.off_mode_fraction``.
    """
    _require_callable("off_mode_by_steps", off_mode_by_steps)
    step_counts = list(step_counts)
    with torch.no_grad():
        received = off_mode_by_steps(model, step_counts, n_samples, seed)
        expected = [off_mode_fraction(generate(model, n_samples, n_steps=k, seed=seed).x) for k in step_counts]
    try:
        received = [float(f) for f in received]
    except (TypeError, ValueError):
        _fail("off_mode_by_steps returned the wrong type", f"a list of {len(step_counts)} fractions",
              _short(received), "return one float per step count, in the order of step_counts.")
    if len(received) != len(step_counts):
        _fail("off_mode_by_steps returned the wrong number of values", f"{len(step_counts)} (one per step count)",
              f"{len(received)}", "loop over step_counts and append one fraction for each.")
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


# ----------------------------------------------------------------------------- exercise 7

LOSS_FLOOR_CHOICES = {
    "a": "The network is too small to represent the velocity field.",
    "b": "The learning rate is too high; with enough steps the loss would reach zero.",
    "c": "Different pairs pass through the same x_t at the same t with different velocities "
         "x1 - x0; the network only sees (x_t, t), so the best it can do is their average.",
    "d": "Euler's method makes an error at every step, and that error shows up in the loss.",
}
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
    """Exercise 7: the multiple-choice ``answer`` ('a'..'d') to why the loss stays above zero, and
    ``floor_at_t0``: the loss the best possible predictor still has at t = 0 (a number).

    For the ring, that floor is the data's variance per coordinate, R^2 / 2 + sigma^2 = 4.5625.
    """
    choice = answer.strip().lower().strip("()") if isinstance(answer, str) else answer
    if choice not in LOSS_FLOOR_CHOICES:
        _fail("the answer is not one of the choices", f"one of {sorted(LOSS_FLOOR_CHOICES)}", _short(answer),
              "set ANSWER to a single letter in quotes, e.g. ANSWER = 'a'.")
    if choice != _LOSS_FLOOR_ANSWER:
        _fail("the multiple-choice answer is not right", "the choice that explains a floor for every model",
              repr(choice), _LOSS_FLOOR_HINTS[choice])
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


# ----------------------------------------------------------------------------- exercise 8

def check_ot_pairing(ot_pairing, n: int = 64, seed: int = 8) -> None:
    """Exercise 8: ``ot_pairing(x0, x1)`` -> x0 re-ordered (n, 2) so row i is paired with x1[i].

    The answer must be a permutation of x0's rows whose total squared distance to x1 equals
    that of ``couplings.minibatch_ot_coupling`` (exact OT).
    """
    _require_callable("ot_pairing", ot_pairing)
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=generator)
    x1 = torch.from_numpy(create_ring_gaussians(n, generator=generator)[0])
    received = _as_tensor("ot_pairing", ot_pairing(x0.clone(), x1.clone()), x0.shape)

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
