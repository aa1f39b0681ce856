"""Checks of the exercise notebook's Part 3, sampling (17.5): exercises 9 to 15."""
from __future__ import annotations

import math

import torch

from .._checks import _short
from ..base_distributions import sample_base
from ..data import RING_RADIUS, RING_STD
from ..marginal_field import RingMarginalField
from ..metrics import off_mode_fraction
from ..solvers import euler_step, generate, rk4_step, solve_ode
from ._harness import (SpiralField, as_tensor, call, check_finite,
                       close, compare, exercise_check, fail, require_callable,
                       vector)

# ----------------------------------------------------------------------------- was exercise 7


@exercise_check
def check_euler(euler_step_fn, euler_sample) -> None:
    """Exercise 7: ``euler_step(velocity, x, t, h)`` and ``euler_sample(velocity, n_samples, n_steps, seed)``.

    The step is compared with ``solvers.euler_step``; the sampler must return the whole
    trajectory (n_steps + 1, n_samples, 2), starting at ``sample_base('gaussian', n_samples,
    seed=seed)``, and agree with ``solvers.solve_ode``. Both on a known field (``SpiralField``).
    """
    require_callable("euler_step", euler_step_fn)
    require_callable("euler_sample", euler_sample)
    field = SpiralField()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    t, h = 0.3, 0.25
    with torch.no_grad():
        received = as_tensor("euler_step", call("euler_step", euler_step_fn, field, x.clone(), t, h), x.shape)
    where = lambda i: f"for t = {t}, h = {h}, x = {vector(x[i])}"  # noqa: E731
    compare("euler_step", received, euler_step(field, x, t, h), where, {
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
        trajectory = call("euler_sample", euler_sample, field, n_samples, n_steps, seed)
    trajectory = as_tensor("euler_sample", trajectory, (n_steps + 1, n_samples, 2))
    x0 = sample_base("gaussian", n_samples, seed=seed)
    start = trajectory[0]
    if not close(start, x0):
        radius = float(start.norm(dim=1).mean())
        if abs(radius - RING_RADIUS) < 0.5:
            hint = (f"the first points lie on the ring (mean radius {radius:.2f}): that is the data. "
                    f"A sampler starts from the base distribution and flows to the data.")
        else:
            hint = (f"start from x0 = sample_base('gaussian', n_samples, seed=seed) so the check can "
                    f"reproduce your draw (your start has mean radius {radius:.2f}).")
        fail("euler_sample starts from the wrong points", f"x0[0] = {vector(x0[0])}",
              f"trajectory[0][0] = {vector(start[0])}", hint)
    with torch.no_grad():
        reference = solve_ode(field, x0, n_steps=n_steps, method="euler", return_trajectory=True).trajectory
        backwards = solve_ode(field, x0, n_steps=n_steps, method="euler", t0=1.0, t1=0.0,
                              return_trajectory=True).trajectory
    if not close(trajectory, reference):
        k = next(k for k in range(n_steps + 1) if not close(trajectory[k], reference[k]))
        hints = {
            "time runs backwards: integrate from t = 0 (noise) to t = 1 (data)": backwards,
            "the field is evaluated at the end of each step; use t = k h at step k = 0 .. n_steps - 1":
                solve_ode(field, x0, n_steps=n_steps, t0=1 / n_steps, t1=1 + 1 / n_steps,
                          return_trajectory=True).trajectory,
        }
        hint = next((h + "." for h, ref in hints.items() if close(trajectory, ref)),
                    "use h = 1 / n_steps and times t = 0, h, 2h, ..., (n_steps - 1) h; keep x0 as trajectory[0].")
        fail(f"euler_sample's trajectory is wrong at index {k} (t = {k / n_steps:.3f})",
              f"first point {vector(reference[k][0])}", f"{vector(trajectory[k][0])}", hint)
    print("Correct: euler_step and euler_sample match the reference Euler solver.")


# ----------------------------------------------------------------------------- was exercise 8


@exercise_check
def check_one_step(one_step_endpoint, off_mode_prediction, model) -> None:
    """Exercise 8: ``one_step_endpoint(x0)`` -> where one Euler step of size 1 along the exact field
    sends x0 (B, 2), and ``off_mode_prediction``: the share of such samples off every mode.

    The printed line compares both with one Euler step of the trained ``model``.
    """
    require_callable("one_step_endpoint", one_step_endpoint)
    x0 = sample_base("gaussian", 256, seed=40)
    received = as_tensor("one_step_endpoint", call("one_step_endpoint", one_step_endpoint, x0.clone()), x0.shape)
    expected = x0 + RingMarginalField()(x0, 0.0)
    compare("one_step_endpoint", received, expected, lambda i: f"for x0 = {vector(x0[i])}", {
        "that is x0 itself: the step does move, by h u_0(x0) with h = 1.": x0,
        "the field at t = 0 is -x0, so the step adds -x0: x0 + 1 * (-x0).": 2 * x0,
        "that is where the step would go if the field pointed at the ring; u_0(x) = -x points at the centre.":
            RING_RADIUS * x0 / x0.norm(dim=1, keepdim=True),
    }, "one Euler step from t = 0 with h = 1: x0 + 1 * u_0(x0), with u_0 from exercise 2.")
    try:
        share = float(off_mode_prediction)
    except (TypeError, ValueError):
        fail("ONE_STEP_OFF_MODE is not a number", "a fraction between 0 and 1", _short(off_mode_prediction),
              "give the share as a float, e.g. 0.25.")
    if not 0 <= share <= 1:
        fail("ONE_STEP_OFF_MODE is not a fraction", "a number between 0 and 1", _short(off_mode_prediction),
              "give the share as a fraction: 30% is 0.3.")
    with torch.no_grad():
        x = sample_base("gaussian", 1000, seed=41)
        landed = x + model(x, 0.0)
    measured = off_mode_fraction(landed)
    if share < 0.9:
        hint = ("that is the data's own rate; " if abs(share - math.exp(-4.5)) < 0.01 else "") + \
            f"the centre is {RING_RADIUS:.0f} from every mode, {RING_RADIUS / RING_STD:.0f} standard deviations."
        fail("ONE_STEP_OFF_MODE is too low", "almost every sample off every mode (above 0.9)", f"{share:.3f}", hint)
    print(f"Correct: one step sends every sample to about 0; the trained model's one-step samples sit "
          f"{float(landed.norm(dim=1).mean()):.2f} from the centre on average, {100 * measured:.0f}% off every mode.")


# ----------------------------------------------------------------------------- was exercise 9


@exercise_check
def check_rk4(rk4_step_fn) -> None:
    """Exercise 9: ``rk4_step(velocity, x, t, h)``, compared with ``solvers.rk4_step``.

    Uses a large step (h = 0.5) on ``SpiralField`` so that every coefficient matters.
    """
    require_callable("rk4_step", rk4_step_fn)
    field = SpiralField()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    t, h = 0.2, 0.5
    with torch.no_grad():
        received = as_tensor("rk4_step", call("rk4_step", rk4_step_fn, field, x.clone(), t, h), x.shape)
    k1 = field(x, t)
    k2 = field(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = field(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = field(x + h * k3, t + h)
    k2_at_t = field(x + 0.5 * h * k1, t)                  # the middle slopes taken at t, not t + h/2
    k3_at_t = field(x + 0.5 * h * k2_at_t, t)
    where = lambda i: f"for t = {t}, h = {h}, x = {vector(x[i])}"  # noqa: E731
    compare("rk4_step", received, rk4_step(field, x, t, h), where, {
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


# ----------------------------------------------------------------------------- was exercise 10


def fewest_good_steps(step_counts, fractions, tolerance: float = 0.01) -> int:
    """The smallest step count whose off-mode fraction is within ``tolerance`` of the last one's."""
    return next(k for k, f in zip(step_counts, fractions) if f <= fractions[-1] + tolerance)


@exercise_check
def check_step_study(off_mode_by_steps, fewest_steps, model, step_counts=(1, 2, 4, 8, 16, 32, 64),
                     n_samples: int = 1000, seed: int = 0) -> None:
    """Exercise 10: ``off_mode_by_steps(model, step_counts, n_samples, seed)`` -> list of fractions,
    and ``fewest_steps``: the smallest count within one percentage point of the largest count's.

    The fractions are compared (within 0.003, three samples in a thousand) with Euler sampling
    by ``solvers.generate`` from ``seed`` and ``metrics.off_mode_fraction``.
    """
    require_callable("off_mode_by_steps", off_mode_by_steps)
    step_counts = list(step_counts)
    with torch.no_grad():
        received = call("off_mode_by_steps", off_mode_by_steps, model, step_counts, n_samples, seed)
        expected = [off_mode_fraction(generate(model, n_samples, n_steps=k, seed=seed).x) for k in step_counts]
    try:
        received = [float(f) for f in received]
    except (TypeError, ValueError):
        fail("off_mode_by_steps returned the wrong type", f"a list of {len(step_counts)} fractions",
              _short(received), "return one float per step count, in the order of step_counts.")
    if len(received) != len(step_counts):
        fail("off_mode_by_steps returned the wrong number of values", f"{len(step_counts)} (one per step count)",
              f"{len(received)}", "loop over step_counts and append one fraction for each.")
    check_finite("off_mode_by_steps", torch.tensor(received))
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
        fail("off_mode_by_steps gives the wrong fractions", f"{{{shown}}}", f"{{{got}}}", hint)
    answer = fewest_good_steps(step_counts, expected)
    if fewest_steps != answer:
        fail("fewest_steps is not the smallest good step count", f"{answer}", _short(fewest_steps),
              f"pick the first count whose fraction is at most {expected[-1]:.3f} + 0.010 "
              f"(the fraction at {step_counts[-1]} steps plus one percentage point).")
    print(f"Correct: off-mode fractions match for {step_counts} steps; {answer} steps are enough.")

