"""Checks of the exercise notebook's Part 3, sampling (17.5, 17a.2): exercises 9 to 15."""
from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import _short
from ..base_distributions import sample_base
from ..data import RING_MODES, RING_RADIUS, create_ring_gaussians, ring_mode_centers
from ..marginal_field import RingMarginalField
from ..metrics import DATA_OFF_MODE, off_mode_fraction, samples_per_mode
from ..solvers import euler_step, generate, midpoint_step, rk4_step, solve_ode
from ..uncertainty import Estimate, over_seeds
from ._harness import (SpiralField, as_fraction, as_number, as_tensor, call, choice, close, compare,
                       exercise_check, fail, require_callable, vector)

__all__ = ['check_euler', 'check_one_step', 'spiral_problem', 'check_kutta', 'check_step_study',
           'check_solver_report', 'check_temperature', 'check_start_sector']


def _euler_on_grid(field, x0: torch.Tensor, times: torch.Tensor, at_end: bool = False, equal_steps: bool = False,
                   chapter_times: bool = False) -> torch.Tensor:
    """Euler's trajectory (K + 1, B, 2) on the grid ``times``, or one of its typical mistakes."""
    K, x, path = len(times) - 1, x0, [x0]
    for k in range(K):
        t, h = float(times[k]), float(times[k + 1] - times[k])
        if equal_steps:
            h = float(times[-1] - times[0]) / K
        if chapter_times:
            t, h = k / K, 1 / K
        x = x + h * field(x, float(times[k + 1]) if at_end else t)
        path.append(x)
    return torch.stack(path)


# ----------------------------------------------------------------------------- exercise 9


@exercise_check
def check_euler(euler_path) -> None:
    """Exercise 9: ``euler_path(velocity, x0, times)`` -> the Euler trajectory (K + 1, B, 2) on the increasing
    grid ``times`` (K + 1,): uniform, crowded near t = 1, and from t = 0.4. Compared with steps of t_{k+1} - t_k
    at t_k on ``SpiralField`` within 1e-4 (any dtype, loop or float conversion of the times passes)."""
    require_callable("euler_path", euler_path)
    field = SpiralField()
    x0 = torch.randn(32, 2, generator=torch.Generator().manual_seed(5))
    grids = {"a uniform grid of 8 steps": torch.linspace(0, 1, 9),
             "a grid that crowds its steps near t = 1": 1 - (1 - torch.linspace(0, 1, 7)) ** 2,
             "a grid from t = 0.4": torch.tensor([0.4, 0.5, 0.7, 1.0])}
    for grid, times in grids.items():
        K = len(times) - 1
        with torch.no_grad():
            received = call("euler_path", euler_path, field, x0.clone(), times.clone())
            expected = _euler_on_grid(field, x0, times)
        if isinstance(received, torch.Tensor) and tuple(received.shape) != (K + 1, 32, 2):
            shape = tuple(received.shape)
            if shape == (32, 2):
                fail(f"euler_path returned one point per sample on {grid}", f"shape {(K + 1, 32, 2)}", f"shape {shape}",
                     "return the whole trajectory: the start and the point after every step, stacked.",
                     "only the end point returned")
            if shape == (K, 32, 2):
                dropped = close(received.detach().float(), expected[1:])
                fail(f"euler_path returned {K} points per sample on {grid}", f"{K + 1} (the start and {K} steps)",
                     f"{K}", "keep x0 as trajectory[0]; a grid of K + 1 times gives K steps and K + 1 points.",
                     "the start dropped from the trajectory" if dropped else "")
        received = as_tensor("euler_path", received, (K + 1, 32, 2))
        if close(received, expected):
            continue
        k = next(k for k in range(K + 1) if not close(received[k], expected[k]))
        mistakes = {
            "the same tensor at every step (an in-place update)":
                (received[-1].expand_as(received),
                 "every entry of your trajectory is the same tensor: x += ... changes x in place; write x = x + ..."),
            "the field read at the end of each step":
                (_euler_on_grid(field, x0, times, at_end=True), "Euler reads the field at the start of each step."),
            "equal steps on a grid whose steps differ":
                (_euler_on_grid(field, x0, times, equal_steps=True),
                 "on this grid the steps differ in size: step k is times[k + 1] - times[k]."),
            "the times k/K and steps 1/K of a uniform grid from 0, not the grid's":
                (_euler_on_grid(field, x0, times, chapter_times=True),
                 "read both the time and the step size from the grid you are given."),
        }
        for mistake, (result, hint) in mistakes.items():
            if close(received, result):
                fail(f"euler_path is wrong on {grid} at index {k} (t = {float(times[k]):.3f})",
                     f"first point {vector(expected[k][0])}", f"{vector(received[k][0])}", hint, mistake)
        fail(f"euler_path is wrong on {grid} at index {k} (t = {float(times[k]):.3f})",
             f"first point {vector(expected[k][0])}", f"{vector(received[k][0])}",
             "trajectory[0] = x0; then x_{k+1} = x_k + (t_{k+1} - t_k) velocity(x_k, t_k) for k = 0 .. K - 1.")
    print("Correct: euler_path follows uniform, crowded and shifted time grids.")


# ----------------------------------------------------------------------------- exercise 10


@exercise_check
def check_one_step(one_step_endpoint, off_mode_prediction, model) -> None:
    """Exercise 10: ``one_step_endpoint(x0)`` -> where one Euler step of size 1 along the exact field sends x0
    (B, 2), and ``off_mode_prediction``: the share of such samples off every mode, a fraction (0.9 to 1 passes).
    The printed line compares both with one Euler step of the trained ``model``."""
    require_callable("one_step_endpoint", one_step_endpoint)
    x0 = sample_base("gaussian", 256, seed=40)
    received = as_tensor("one_step_endpoint", call("one_step_endpoint", one_step_endpoint, x0.clone()), x0.shape)
    expected = x0 + RingMarginalField()(x0, 0.0)
    compare("one_step_endpoint", received, expected, lambda i: f"for x0 = {vector(x0[i])}", {
        "no step taken": (x0, "a step of size h = 1 moves x0 by 1 * u_0(x0); what did you find for u_0 in "
                              "exercise 2?"),
        "the step taken against the field": (2 * x0, "check the direction of u_0 from exercise 2: does the field at "
                                                     "t = 0 point towards the centre or away from it?"),
        "a step straight onto the ring": (RING_RADIUS * x0 / x0.norm(dim=1, keepdim=True),
                                          "one Euler step goes to x0 + h u_0(x0) with the field at t = 0, "
                                          "not where the flow should end."),
    }, "one Euler step from t = 0 with h = 1: x0 + 1 * u_0(x0), with u_0 from exercise 2.")
    if isinstance(off_mode_prediction, float) and math.isnan(off_mode_prediction):
        fail("ONE_STEP_OFF_MODE is not a fraction", "a number between 0 and 1", _short(off_mode_prediction),
             "set it to a share, e.g. 0.3 for 30%.")
    share = as_fraction("ONE_STEP_OFF_MODE", off_mode_prediction)
    with torch.no_grad():
        x = sample_base("gaussian", 1000, seed=41)
        landed = x + model(x, 0.0)
    if share < 0.9:
        data_rate = abs(share - DATA_OFF_MODE) < 0.01
        fail("ONE_STEP_OFF_MODE is too low", "a share that fits where your one_step_endpoint lands", f"{share:.3f}",
             "measure where your one-step end points lie: their distance to the nearest mode centre "
             "(distance_to_nearest_mode) against 0.75 decides.", "the data's own rate" if data_rate else "")
    print(f"Correct: one step sends every sample to about 0; the trained model's one-step samples sit "
          f"{float(landed.norm(dim=1).mean()):.2f} from the centre on average, "
          f"{100 * off_mode_fraction(landed):.0f}% off every mode.")


# ----------------------------------------------------------------------------- exercise 11


def spiral_problem():
    """A known field and its exact end points: (SpiralField, x0 (64, 2) float64, x(1) (64, 2) float64).

    The field is linear, v = A x + (2t - 1) b, so the state z = (x, t, 1) obeys z' = M z and
    x(1) is read off exp(M) z(0), exact to rounding.
    """
    field = SpiralField()
    x0 = 1.5 * torch.randn(64, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    M = torch.zeros(4, 4, dtype=torch.float64)
    M[:2, :2], M[:2, 2], M[:2, 3], M[2, 3] = field.matrix.double(), 2 * field.offset.double(), -field.offset.double(), 1
    z0 = torch.cat([x0, torch.zeros(64, 1, dtype=torch.float64), torch.ones(64, 1, dtype=torch.float64)], dim=1)
    return field, x0, (z0 @ torch.linalg.matrix_exp(M).T)[:, :2]


def _kutta3(field, x, t, h, a31=-1.0, a32=2.0, c2=0.5, weights=(1 / 6, 2 / 3, 1 / 6), scale=True):
    k1 = field(x, t)
    k2 = field(x + 0.5 * h * k1, t + c2 * h)
    k3 = field(x + h * (a31 * k1 + a32 * k2), t + h)
    return x + (h if scale else 1.0) * (weights[0] * k1 + weights[1] * k2 + weights[2] * k3)


def _order(step, field, x0, exact, n_steps: int) -> float:
    """log2 of the mean end-point error with n_steps over that with 2 n_steps, on [0, 1]."""
    errors = []
    for n in (n_steps, 2 * n_steps):
        x = x0
        for k in range(n):
            x = step(field, x, k / n, 1 / n)
        errors.append(float((x - exact).norm(dim=1).mean()))
    return math.log2(errors[0] / errors[1])


@exercise_check
def check_kutta(kutta_step, observed_order, measured_order) -> None:
    """Exercise 11: ``kutta_step(velocity, x, t, h)`` (Kutta's three-stage method), ``observed_order(step,
    velocity, x0, exact, n_steps)`` -> log2(error with n_steps / error with 2 n_steps), and ``measured_order``.

    The step is compared on the exact ring field (nonlinear, so that every tableau entry matters). The order
    function is run on Euler, midpoint and RK4 with 4 steps and must be within 0.15 of the mean-distance
    estimate (mean, root-mean-square, largest or per-point errors all agree within 0.05 there). The measured
    order passes from 2.75 to 3.5: on ``spiral_problem`` every error norm and every n_steps from 1 to 16
    gives 2.99 to 3.31 for this method, in float32 or float64.
    """
    for name, value in (("kutta_step", kutta_step), ("observed_order", observed_order)):
        require_callable(name, value)
    field = RingMarginalField()
    x = sample_base("gaussian", 64, seed=8).double()
    t, h = 0.3, 0.4
    with torch.no_grad():
        received = as_tensor("kutta_step", call("kutta_step", kutta_step, field, x.clone(), t, h), x.shape)
    expected = _kutta3(field, x, t, h).float()
    k1 = field(x, t)
    where = lambda i: f"for t = {t}, h = {h}, x = {vector(x[i])}"  # noqa: E731
    compare("kutta_step", received, expected, where, {
        "the -1 of row 3 left out": (_kutta3(field, x, t, h, a31=0.0).float(),
                                     "row 3 has two entries: k3 starts from x + h (a31 k1 + a32 k2)."),
        "the sign of row 3's first entry lost": (_kutta3(field, x, t, h, a31=1.0).float(),
                                                 "read the signs in row 3 of the tableau again."),
        "the stage times ignored": (_kutta3(field, x, t, h, c2=0.0).float(),
                                    "the first column gives the times: stage i reads the field at t + c_i h."),
        "equal weights": (_kutta3(field, x, t, h, weights=(1 / 3, 1 / 3, 1 / 3)).float(),
                          "the last row of the tableau gives the weights of k1, k2, k3."),
        "the step not scaled by h": (_kutta3(field, x, t, h, scale=False).float(),
                                     "the new point is x + h (b1 k1 + b2 k2 + b3 k3)."),
        "the classical RK4 step": (rk4_step(field, x, t, h).float(), "this tableau has three stages, not four."),
        "a plain Euler step": ((x + h * k1).float(), "combine the three stages of the tableau."),
    }, "k_i = v(x + h sum_j a_ij k_j, t + c_i h) row by row; then x + h sum_i b_i k_i.")

    problem_field, x0, exact = spiral_problem()
    for name, step in (("Euler", euler_step), ("midpoint", midpoint_step), ("RK4", rk4_step)):
        expected_order = _order(step, problem_field, x0, exact, 4)
        with torch.no_grad():
            value = call("observed_order", observed_order, step, problem_field, x0.clone(), exact.clone(), 4)
        received_order = as_number("observed_order(...)", value)
        if abs(received_order - expected_order) <= 0.15:
            continue
        ratio = 2 ** expected_order
        mistakes = {"the natural log of the error ratio": math.log(ratio),
                    "log10 of the error ratio": math.log10(ratio), "the error ratio itself, not its log2": ratio,
                    "the ratio upside down": -expected_order,
                    "h halved twice (n and 4 n steps)": 2 * expected_order}
        mistake = next((m for m, v in mistakes.items() if abs(received_order - v) <= 0.15), "")
        fail(f"observed_order of {name}'s step with 4 and 8 steps on spiral_problem", f"{expected_order:.2f}",
             f"{received_order:.2f}", "order = log2(error with n steps / error with 2 n steps), each error the mean "
             "distance of the end points to exact; the steps run from t = 0 to 1 with h = 1 / n.", mistake)
    order = as_number("MEASURED_ORDER", measured_order)
    if not 2.75 <= order <= 3.5:
        hint = ("that is RK4's order: measure your kutta_step." if 3.5 < order < 4.5 else
                "measure your kutta_step with observed_order on spiral_problem() (n_steps from 2 to 8).")
        fail("MEASURED_ORDER is not what this method shows", "a measurement of kutta_step's order", f"{order:.2f}",
             hint)
    print(f"Correct: kutta_step matches the tableau, observed_order reads Euler, midpoint and RK4 right, and "
          f"your measured order {order:.2f} is that of a third-order method.")


# ----------------------------------------------------------------------------- exercise 12


def _off_mode_estimate(model, n_steps: int, seeds, n_samples: int) -> Estimate:
    return over_seeds(lambda seed: off_mode_fraction(generate(model, n_samples, n_steps=n_steps, seed=seed).x), seeds)


@exercise_check
def check_step_study(off_mode_over_seeds, fewest_steps, model, step_counts, seeds, n_samples) -> None:
    """Exercise 12: ``off_mode_over_seeds(model, n_steps, seeds, n_samples)`` -> an ``uncertainty.Estimate`` of
    the off-mode share of Euler samples over the seeds, and ``fewest_steps``: the smallest of ``step_counts``
    whose 95% interval reaches down to the ring's own share exp(-4.5).

    The function is compared with ``solvers.generate`` (8 steps, seeds 3 and 4, 500 samples; means and
    half-widths within 0.003). The answer is judged on the check's own measurement with the same seeds and
    sample size, so whatever seeds (at least 2) you chose, the answer your measurement supports passes; a
    margin of 0.001 on either side of exp(-4.5) keeps a sample flipped by rounding from deciding.
    """
    require_callable("off_mode_over_seeds", off_mode_over_seeds)
    with torch.no_grad():
        received = call("off_mode_over_seeds", off_mode_over_seeds, model, 8, (3, 4), 500)
        expected = _off_mode_estimate(model, 8, (3, 4), 500)
    if not isinstance(received, Estimate):
        number = isinstance(received, (int, float)) or (isinstance(received, torch.Tensor) and received.numel() == 1)
        fail("off_mode_over_seeds returned the wrong kind of value", "an Estimate (from uncertainty.over_seeds)",
             _short(received), "wrap your per-seed measurement in over_seeds(lambda seed: ..., seeds).",
             "one number without its noise" if number else "")
    if not (math.isfinite(received.mean) and math.isfinite(received.half_width)):
        fail("off_mode_over_seeds returned NaN", "a finite estimate", str(received), "look at the per-seed shares.")
    if abs(received.mean - expected.mean) > 0.003 or abs(received.half_width - expected.half_width) > 0.003:
        mistakes = {"a percentage where a fraction is asked for": abs(received.mean / 100 - expected.mean) <= 0.003,
                    "the same draw for every seed": received.half_width < 1e-9 < expected.half_width}
        mistake = next((m for m, found in mistakes.items() if found), "")
        hint = {"the same draw for every seed": "pass each seed to euler_sample, so each seed draws new samples.",
                "a percentage where a fraction is asked for": "off_mode_fraction already gives a fraction."
                }.get(mistake, "per seed: n_samples Euler samples with n_steps steps (euler_sample(model, n_samples, "
                               "n_steps, seed)[-1]), scored by off_mode_fraction; then over_seeds.")
        fail("off_mode_over_seeds gives the wrong estimate for 8 steps, seeds (3, 4), 500 samples", f"{expected:.4f}",
             f"{received:.4f}", hint, mistake)
    seeds, step_counts = list(seeds), list(step_counts)
    if len(seeds) < 2:
        fail("the study rests on one draw", "at least 2 seeds", _short(seeds),
             "one draw has no noise estimate; measure over two or more seeds.", "one draw")
    if fewest_steps not in step_counts:
        fail("FEWEST_STEPS is not one of STEP_COUNTS", f"one of {step_counts}", _short(fewest_steps),
             "pick the answer from the step counts you measured.")
    index = step_counts.index(fewest_steps)
    with torch.no_grad():
        at = _off_mode_estimate(model, fewest_steps, seeds, n_samples)
        before = _off_mode_estimate(model, step_counts[index - 1], seeds, n_samples) if index else None
    if at.low > DATA_OFF_MODE + 0.001:
        fail(f"FEWEST_STEPS = {fewest_steps} leaves measurably more samples off every mode than real data",
             f"a count whose interval reaches {100 * DATA_OFF_MODE:.1f}%", f"{at.percent()}",
             "the whole 95% interval at this count lies above the data's share; look at larger counts.")
    if before is not None and before.low <= DATA_OFF_MODE - 0.001:
        fail(f"FEWEST_STEPS = {fewest_steps} is not the fewest", "the smallest count whose interval reaches "
             f"{100 * DATA_OFF_MODE:.1f}%",
             f"{fewest_steps}, while {step_counts[index - 1]} steps give {before.percent()}",
             "a smaller count's interval already reaches the data's share.",
             "the means compared, not the intervals" if before.mean > DATA_OFF_MODE else "")
    print(f"Correct: over {len(seeds)} seeds of {n_samples} samples, {fewest_steps} Euler steps leave "
          f"{at.percent()} off every mode, within reach of the data's {100 * DATA_OFF_MODE:.1f}%"
          + (f"; {step_counts[index - 1]} steps leave {before.percent()}." if before is not None else "."))


# ----------------------------------------------------------------------------- exercise 13


@exercise_check
def check_solver_report(end_point_report, answer, model) -> None:
    """Exercise 13: ``end_point_report(model, x0, reference, **solver_options)`` -> (nfe, off-mode share, mean
    distance of the end points to ``reference``), and ``answer``, a letter recorded here, graded by the hidden
    test. Run on 300 points with dopri5 (tolerance 1e-2) and RK4 (2 steps): NFE exact, the share within 0.004,
    the mean distance within 1% (+ 1e-4)."""
    require_callable("end_point_report", end_point_report)
    x0 = sample_base("gaussian", 300, seed=9)
    with torch.no_grad():
        reference = solve_ode(model, x0, n_steps=16, method="rk4")
    for options in (dict(method="dopri5", rtol=1e-2, atol=1e-2), dict(method="rk4", n_steps=2)):
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        with torch.no_grad():
            value = call("end_point_report", end_point_report, model, x0.clone(), reference.x.clone(), **options)
            solution = solve_ode(model, x0, **options)
        if not (isinstance(value, (tuple, list)) and len(value) == 3):
            fail(f"end_point_report({shown}) returned the wrong kind of value", "a tuple (nfe, share, mean error)",
                 _short(value), "return the three numbers as a tuple.")
        nfe = as_number("the NFE of end_point_report", value[0])
        share = as_fraction("the off-mode share of end_point_report", value[1])
        error = as_number("the mean error of end_point_report", value[2])
        distances = (solution.x - reference.x).norm(dim=1)
        if nfe != solution.nfe:
            mistake = ("the reference solve's evaluations" if nfe in (reference.nfe, reference.nfe + solution.nfe)
                       else "the solver options not passed on" if nfe == 100 else "")
            fail(f"end_point_report({shown}) counts the wrong evaluations", f"{solution.nfe}", f"{nfe:g}",
                 "report the .nfe of the solve made with **solver_options, not of the reference.", mistake)
        if abs(share - off_mode_fraction(solution.x)) > 0.004:
            fail(f"end_point_report({shown}) gives the wrong off-mode share", f"{off_mode_fraction(solution.x):.4f}",
                 f"{share:.4f}", "score the solver's end points (.x) with off_mode_fraction.")
        right = float(distances.mean())
        if abs(error - right) > 0.01 * right + 1e-4:
            mistakes = {"the root of the mean squared distance": float(distances.pow(2).mean().sqrt()),
                        "the mean squared distance": float(distances.pow(2).mean()),
                        "the distance to the start, not to the reference": float((solution.x - x0).norm(dim=1).mean())}
            mistake = next((m for m, v in mistakes.items() if abs(error - v) <= 0.01 * abs(v) + 1e-4), "")
            fail(f"end_point_report({shown}) gives the wrong mean error", f"{right:.4f}", f"{error:.4f}",
                 "per sample, the Euclidean distance of its end point to its reference point; then the mean.", mistake)
    letter = choice("DOPRI_ANSWER", answer)
    print(f"Correct: end_point_report matches the check on 300 points; DOPRI_ANSWER = {letter!r} is recorded "
          f"(graded later).")


# ----------------------------------------------------------------------------- exercise 14


def _imbalance(samples) -> float:
    counts = torch.as_tensor(samples_per_mode(samples), dtype=torch.float64)
    return float(0.5 * (counts / counts.sum() - 1 / len(counts)).abs().sum())


def _lopsided_samples() -> torch.Tensor:
    """Ring points with uneven modes (300, 100, 100, 50, 50, 100, 100, 0) and 40 points at the centre."""
    points, labels = map(torch.as_tensor, create_ring_gaussians(4000, seed=13))
    parts = [points[labels == k][:n] for k, n in enumerate((300, 100, 100, 50, 50, 100, 100, 0))]
    return torch.cat(parts + [0.05 * torch.randn(40, 2, generator=torch.Generator().manual_seed(14))])


@exercise_check
def check_temperature(mode_imbalance, scaled_start_samples, answer, model) -> None:
    """Exercise 14: ``mode_imbalance(samples)`` -> half the summed gap between each mode's share of the in-mode
    samples and 1/8; ``scaled_start_samples(model, scale, n_samples, seed)`` -> (n_samples, 2) after 32 Euler
    steps from ``scale`` times Gaussian noise; ``answer``: a letter recorded here, graded by the hidden test.
    The imbalance is compared (within 1e-6) on an even and a lopsided set; the samples (within 1e-4) with
    ``solve_ode`` from 0.7 x0 on 200 points (loops or vectorised, either time grid of 33 points)."""
    require_callable("mode_imbalance", mode_imbalance)
    require_callable("scaled_start_samples", scaled_start_samples)
    for name, points in (("the ring's data", torch.as_tensor(create_ring_gaussians(800, seed=3)[0])),
                         ("a lopsided set with 40 points off every mode", _lopsided_samples())):
        received = as_number("mode_imbalance(...)", call("mode_imbalance", mode_imbalance, points.clone()))
        expected = _imbalance(points)
        if abs(received - expected) <= 1e-6:
            continue
        counts = torch.as_tensor(samples_per_mode(points), dtype=torch.float64)
        mistakes = {"the shares taken of all samples, off-mode ones included":
                    float(0.5 * (counts / len(points) - 1 / 8).abs().sum()),
                    "the factor 1/2 left out": 2 * expected,
                    "counts where shares are asked for": float(0.5 * (counts - counts.sum() / 8).abs().sum()),
                    "the fullest mode's share minus the emptiest's":
                    float((counts.max() - counts.min()) / counts.sum())}
        mistake = next((m for m, v in mistakes.items() if abs(received - v) <= 1e-6), "")
        fail(f"mode_imbalance is wrong on {name}", f"{expected:.4f}", f"{received:.4f}",
             "count the samples within 3 std of each mode (samples_per_mode), divide by their total, then "
             "0.5 * sum over modes of |share - 1/8|.", mistake)
    x0 = sample_base("gaussian", 200, seed=11)
    with torch.no_grad():
        value = call("scaled_start_samples", scaled_start_samples, model, 0.7, 200, 11)
        received = as_tensor("scaled_start_samples", value, (200, 2))
        solve = lambda start: solve_ode(model, start, n_steps=32).x  # noqa: E731
        expected = solve(0.7 * x0)
    where = lambda i: f"for x0 = {vector(x0[i])}"  # noqa: E731
    compare("scaled_start_samples(model, 0.7, 200, seed=11)", received, expected, where, {
        "no scaling": (solve(x0), "multiply the Gaussian start by scale before sampling."),
        "the variance scaled, not the standard deviation": (solve(0.49 * x0),
                                                            "scale the points themselves by 0.7: x0 -> 0.7 x0."),
        "the samples scaled instead of the start": (0.7 * solve(x0), "scale the start x0, then run the flow."),
        "the start divided by the scale": (solve(x0 / 0.7), "multiply x0 by scale, so that 0.7 shrinks the noise."),
    }, "x0 = scale * sample_base('gaussian', n_samples, seed=seed), then 32 Euler steps from t = 0 to 1.")
    letter = choice("TEMPERATURE_ANSWER", answer)
    print(f"Correct: mode_imbalance and scaled_start_samples match the check; TEMPERATURE_ANSWER = {letter!r} is "
          f"recorded (graded later).")


# ----------------------------------------------------------------------------- exercise 15


def _sectors(x: torch.Tensor) -> torch.Tensor:
    angle = torch.atan2(x[:, 1].double(), x[:, 0].double())
    return torch.round(angle / (2 * math.pi / RING_MODES)).long() % RING_MODES


@exercise_check
def check_start_sector(start_sector, answer) -> None:
    """Exercise 15: ``start_sector(x0)`` -> for each start (B, 2), the mode (0..7) whose centre lies in the
    direction closest to the start's, (B,) integers, numpy or torch; ``answer``: a letter recorded here, graded
    by the hidden test. Compared exactly on 400 Gaussian points, none within 1e-3 rad of a sector boundary
    (the nearest mode centre to x0 itself gives the same answer and passes)."""
    require_callable("start_sector", start_sector)
    x = sample_base("gaussian", 600, seed=12).double()
    angle = torch.atan2(x[:, 1], x[:, 0])
    to_boundary = 0.5 - ((angle / (2 * math.pi / RING_MODES) - 0.5) % 1 - 0.5).abs()       # in sectors
    off_boundary = to_boundary > 1e-3 / (2 * math.pi / RING_MODES)
    x = x[off_boundary][:400].float()
    value = call("start_sector", start_sector, x.clone())
    received = torch.as_tensor(value) if isinstance(value, (torch.Tensor, np.ndarray, list)) else None
    if received is None or received.numel() != len(x) or not torch.equal(received.double(), received.double().round()):
        fail("start_sector returned the wrong values", f"{len(x)} whole numbers 0..7", _short(value),
             "return one integer per start, e.g. a tensor of dtype long.")
    received = received.reshape(-1).long()
    expected = _sectors(x)
    if torch.equal(received, expected):
        letter = choice("LOGO_ANSWER", answer)
        print(f"Correct: start_sector matches the check on {len(x)} starts; LOGO_ANSWER = {letter!r} is recorded "
              f"(graded later).")
        return
    i = int(torch.nonzero(received != expected)[0, 0])
    angle = torch.atan2(x[:, 1].double(), x[:, 0].double()) / (2 * math.pi / RING_MODES)
    mistakes = {"directions opposite each other put in one sector (atan, not atan2)":
                (torch.round(torch.atan(x[:, 1].double() / x[:, 0].double()) / (math.pi / 4)).long() % RING_MODES,
                 "atan cannot tell x from -x; torch.atan2(y, x) gives the full angle."),
                "sectors that start at a mode's direction instead of being centred on it":
                (torch.floor(angle).long() % RING_MODES,
                 "sector k reaches half a sector either side of mode k's direction: round, not floor."),
                "negative angles not wrapped": (torch.round(angle).long(),
                                                "a start below the x axis has a negative angle: wrap with % 8.")}
    for mistake, (result, hint) in mistakes.items():
        if torch.equal(received, result):
            fail(f"start_sector is wrong for x0 = {vector(x[i])}", f"{int(expected[i])}", f"{int(received[i])}",
                 hint, mistake)
    fail(f"start_sector is wrong for x0 = {vector(x[i])}", f"{int(expected[i])}", f"{int(received[i])}",
         f"mode k's centre lies in the direction of angle k * 45 degrees ({vector(ring_mode_centers()[1])} for k = 1); "
         "give each start the k whose direction is closest to its own.")
