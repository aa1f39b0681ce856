"""Checks of the exercise notebook's Part 4, conditioning (17.6): exercises 16 to 18."""
from __future__ import annotations

import numpy as np
import torch

from .._checks import _short
from ..data import RING_RADIUS, RING_STD, ring_mode_centers
from ..marginal_field import RingMarginalField
from ..metrics import distance_to_nearest_mode
from ..models import class_code
from ..solvers import generate
from ._harness import (ExerciseFailure, as_fraction, as_number, as_tensor, call, choice, close, exercise_check,
                       fail, require_callable, vector)

__all__ = ["check_conditional_sampling", "check_guidance", "check_extrapolation", "grade_number"]


def grade_number(name: str, answer, low: float, high: float, reason: str, fraction: bool = False) -> float:
    """Fail unless the predicted number ``answer`` lies in [low, high]; ``reason`` says why another value is wrong.

    Called from a hidden test (the range lives in the solution notebook, not here); ``fraction``: the answer
    must be a share in [0, 1], and a percentage is named as the mistake."""
    value = as_fraction(name, answer) if fraction else as_number(name, answer)
    if not low <= value <= high:
        fail(f"{name} is not what the measurement shows", "another value", _short(answer), reason)
    return value


# ----------------------------------------------------------------------------- exercise 16


def _samples(name: str, value, n_samples: int, n_steps: int) -> torch.Tensor:
    """The student's samples (n_samples, 2); a whole trajectory (S, n_samples, 2) is named as the mistake."""
    shape = tuple(getattr(value, "shape", ()))
    if len(shape) == 3 and shape[1:] == (n_samples, 2):
        fail(f"{name} returned a trajectory", f"the samples, shape ({n_samples}, 2)", f"shape {shape}",
             f"euler_sample gives every frame from t = 0 to t = 1 ({n_steps + 1} of them for {n_steps} steps); "
             f"{name} returns only the points where the flow ends.", "the whole trajectory returned")
    return as_tensor(name, value, (n_samples, 2))


def _call_sample_mode(sample_mode, model, mode: int, n_samples: int, n_steps: int, seed: int):
    """The student's samples; an error that the model raises when called without a code is named as such."""
    try:
        return call("sample_mode", sample_mode, model, mode, n_samples, n_steps, seed)
    except ExerciseFailure as failure:
        try:
            model(torch.zeros(n_samples, 2), 0.0)
        except Exception as error:          # the error a conditional model raises without its code
            without_code = str(error).strip().splitlines()[0] if str(error).strip() else ""
        else:
            without_code = ""
        if not (without_code and without_code in str(failure)):
            raise
    fail("sample_mode raised an error", "samples", "the error the model raises when it is called without a code",
         "a conditional model takes the code as its third argument, model(x, t, code), at every step.",
         "the model called without its code")


@exercise_check
def check_conditional_sampling(sample_mode, model, modes=(0, 3, 6), n_samples: int = 200,
                               n_steps: int = 20, seed: int = 7) -> None:
    """Exercise 16: ``sample_mode(model, mode, n_samples, n_steps, seed)`` -> (n_samples, 2).

    ``model`` is a one-hot conditional model (``ConditionalVelocityField``). The answer must start
    from ``sample_base('gaussian', n_samples, seed=seed)`` and follow the field with the one-hot
    code of ``mode`` for ``n_steps`` Euler steps, as ``solvers.generate`` does (to 1e-3). Named
    mistakes: a whole trajectory returned, the all-zero code (the model is told no mode), the code
    of another mode, a code the model does not know (most samples end between the modes) and a condition
    that does not steer the samples (they spread over the modes).
    """
    require_callable("sample_mode", sample_mode)
    if getattr(model, "condition_kind", None) != "onehot":
        raise TypeError(f"model must be a one-hot conditional model (ConditionalVelocityField), "
                        f"got {type(model).__name__}")
    n_classes = model.condition_dim
    centers = torch.from_numpy(ring_mode_centers(n_classes, RING_RADIUS))
    for mode in modes:
        with torch.no_grad():
            received = _call_sample_mode(sample_mode, model, mode, n_samples, n_steps, seed)
            expected = generate(model, n_samples, n_steps=n_steps, condition=class_code(mode, n_classes),
                                seed=seed).x.cpu()
        received = _samples("sample_mode", received, n_samples, n_steps)
        if close(received, expected, atol=1e-3):
            continue
        distance, nearest = distance_to_nearest_mode(received, n_classes, RING_RADIUS)
        near = distance <= 3 * RING_STD
        hit = float((near & (nearest == mode)).mean())
        counts = np.bincount(nearest[near], minlength=n_classes)
        what = f"sample_mode(mode={mode}) gives the wrong samples"
        wanted = f"samples near the centre {vector(centers[mode])} (first sample {vector(expected[0])})"
        landed = f"{100 * hit:.0f}% at mode {mode}"
        with torch.no_grad():
            no_code = generate(model, n_samples, n_steps=n_steps, condition=torch.zeros(1, n_classes),
                               seed=seed).x.cpu()
        if close(received, no_code, atol=1e-3):
            fail(what, wanted, f"{landed}, the samples of the all-zero code", "the all-zero code tells the model "
                 "no mode, and this model never saw it in training, so its samples follow no mode. Pass the "
                 "requested mode's one-hot code at every step.", "the model is not told the mode (all-zero code)")
        if near.mean() < 0.5:
            fail(what, wanted, f"{landed}, {100 * float(1 - near.mean()):.0f}% far from every mode",
                 "most samples end far from every mode, as they do for a code this model never saw in training. Pass "
                 f"the one-hot code of the requested mode: a 1 at entry {mode}, 0 elsewhere.",
                 "a code the model does not know")
        if hit > 0.5:
            fail(what, wanted, f"{landed} (first sample {vector(received[0])})",
                 "the mode is right but the points are not the reference's: start from sample_base('gaussian', "
                 "n_samples, seed=seed) and take exactly n_steps Euler steps from t = 0 to 1.")
        if counts.sum() > n_samples // 2 and counts.max() > counts.sum() // 2:
            other = int(counts.argmax())
            fail(what, wanted, f"{landed}, {100 * counts[other] / n_samples:.0f}% at mode {other}",
                 f"mode k sits at angle 2 pi k / {n_classes}; the hot entry of the code must be entry {mode}.",
                 "the code of another mode")
        if (counts > n_samples / (4 * n_classes)).sum() >= 3:
            fail(what, wanted, f"{landed}; the samples spread over {(counts > 0).sum()} modes",
                 "the samples spread as if the model did not know which mode to draw: give the model the "
                 "requested mode's one-hot code at every step.", "the condition does not steer the samples")
        fail(what, wanted, f"{landed}, {100 * float(1 - near.mean()):.0f}% far from every mode "
             f"(first sample {vector(received[0])})",
             f"condition on the one-hot code of mode {mode}, shape (1, {n_classes}), at every Euler step.")
    print(f"Correct: sample_mode draws the requested modes {list(modes)} exactly like the reference sampler.")


# ----------------------------------------------------------------------------- exercise 17

_EXACT = RingMarginalField()


def _mode_field(x: torch.Tensor, t: float, mode: int) -> torch.Tensor:
    """The exact field of one blob, E[x1 - x0 | x_t = x, mode] (float64)."""
    var, c = _EXACT.moments(torch.tensor(t, dtype=torch.float64))
    centre = _EXACT.centers[mode]
    return centre + c / var * (x.double() - t * centre)


def _guided_field_problem(guided_field) -> None:
    """Fail unless guided_field(mode, w)(x, t) is u + w (v_mode - u) on fixed inputs; name the mistake."""
    x = 3 * torch.randn(48, 2, generator=torch.Generator().manual_seed(61))
    cases = [(mode, w, t) for mode in (2, 5) for w in (0.0, 1.0, 2.5, 4.0) for t in (0.25, 0.7)]
    received = {}
    with torch.no_grad():
        for mode, w in dict.fromkeys((mode, w) for mode, w, _ in cases):
            velocity = call("guided_field", guided_field, mode, w)
            require_callable(f"guided_field({mode}, {w})", velocity)
            for t in (0.25, 0.7):
                name = f"guided_field({mode}, {w})(x, t)"
                received[mode, w, t] = as_tensor(name, call(name, velocity, x.clone(), t), x.shape).double()
    uncond = {t: _EXACT(x.double(), t) for t in (0.25, 0.7)}
    cond = {(mode, t): _mode_field(x, t, mode) for mode in range(len(_EXACT.centers)) for t in (0.25, 0.7)}

    def agrees(form) -> bool:
        return all(close(received[case], form(*case), atol=1e-3) for case in cases)

    def right(mode, w, t):
        return uncond[t] + w * (cond[mode, t] - uncond[t])

    if agrees(right):
        return
    mistakes = {
        "the two fields swapped": (lambda mode, w, t: cond[mode, t] + w * (uncond[t] - cond[mode, t]),
                                   "w moves from the unconditional field u towards the conditional one v_k."),
        "the other convention's w (Ho & Salimans)": (
            lambda mode, w, t: (1 + w) * cond[mode, t] - w * uncond[t],
            "(1 + w) v_k - w u is the same family of fields, but in it w = 0 is the conditional field. "
            "Here w = 0 must give the unconditional field and w = 1 the conditional one."),
        "only the conditional field, scaled": (lambda mode, w, t: w * cond[mode, t],
                                               "guidance scales the difference v_k - u and adds it to u."),
        "the conditional field ignores the mode": (
            lambda mode, w, t: uncond[t],
            "your conditional field equals the unconditional one, so w changes nothing. The field of a model told "
            "mode k is the field of mode k's blob alone: mu_k + (c_t / var_t)(x - t mu_k)."),
    }
    mode, w, t = next(case for case in cases if not close(received[case], right(*case), atol=1e-3))
    i = int(((received[mode, w, t] - right(mode, w, t)).abs() > 1e-3).any(dim=1).nonzero()[0, 0])
    what = f"guided_field({mode}, {w}) is wrong at t = {t}, x = {vector(x[i])}"
    for mistake, (form, hint) in mistakes.items():
        if agrees(form):
            fail(what, vector(right(mode, w, t)[i]), vector(received[mode, w, t][i]), hint, mistake)
    for other in range(len(_EXACT.centers)):
        if other != 2 and all(close(received[2, w, t], uncond[t] + w * (cond[other, t] - uncond[t]), atol=1e-3)
                              for w in (1.0, 2.5, 4.0) for t in (0.25, 0.7)):
            fail("guided_field(2, w) is wrong", f"the guided field of mode 2 (centre {vector(_EXACT.centers[2])})",
                 f"that of mode {other} (centre {vector(_EXACT.centers[other])})",
                 "mu_k is EXACT.centers[mode]; mode k sits at angle 2 pi k / 8.", "the field of another mode")
    hint = {0.0: "at w = 0 the guided field is the unconditional field u_t(x), RingMarginalField()(x, t).",
            1.0: "at w = 1 the guided field is the conditional field of the requested mode alone: check v_k."}.get(
        w, "v_w = u + w (v_k - u), with u the unconditional field and v_k the field of mode k's blob.")
    fail(what, vector(right(mode, w, t)[i]), vector(received[mode, w, t][i]), hint)


def _spread_values(samples: np.ndarray) -> list[float]:
    """Every reading of 'the standard deviation about the samples' mean, averaged over x and y'."""
    return [f(samples, ddof) for ddof in (0, 1) for f in (lambda s, d: float(s.std(axis=0, ddof=d).mean()),
                                                           lambda s, d: float(np.sqrt(s.var(axis=0, ddof=d).mean())))]


def _share_and_spread_problem(share_and_spread) -> None:
    """Fail unless share_and_spread(samples, mode) gives the share within 3 std of the mode and the spread."""
    generator = torch.Generator().manual_seed(62)
    centers = torch.from_numpy(ring_mode_centers()).double()
    for mode, stretch, widths in ((5, 1.1, (0.12, 0.3)), (0, 0.95, (0.3, 0.2))):
        blob = stretch * centers[mode] + torch.randn(300, 2, generator=generator, dtype=torch.float64) * \
            torch.tensor(widths, dtype=torch.float64)
        others = centers[torch.tensor([1, 6, 7] * 30)] + 0.25 * torch.randn(90, 2, generator=generator,
                                                                            dtype=torch.float64)
        samples = torch.cat([blob, others, 2 * torch.rand(30, 2, generator=generator, dtype=torch.float64) - 1])
        samples = samples[torch.randperm(len(samples), generator=generator)].float()
        result = call("share_and_spread", share_and_spread, samples.clone(), mode)
        try:
            share, spread = result
        except (TypeError, ValueError):
            fail("share_and_spread returned the wrong kind of value", "two numbers (share, spread)",
                 _short(result), "return a tuple: share, spread.")
        share = as_fraction("the share of share_and_spread", share)
        spread = as_number("the spread of share_and_spread", spread)
        points = samples.double().numpy()
        to_mode = np.linalg.norm(points - centers[mode].numpy(), axis=1)
        distance, nearest = distance_to_nearest_mode(points)
        expected = float(np.mean(to_mode <= 3 * RING_STD))
        if abs(share - expected) > 1e-6:
            mistakes = {
                "the share near any mode": (float(np.mean(distance <= 3 * RING_STD)),
                                            "count only the samples near the requested mode's centre."),
                "the nearest mode without the distance limit": (float(np.mean(nearest == mode)),
                                                                "a sample counts when it lies within 3 RING_STD "
                                                                "of the centre, not merely closest to it."),
                "one standard deviation instead of three": (float(np.mean(to_mode <= RING_STD)),
                                                            "the limit is 3 RING_STD from the centre."),
            }
            mistake, hint = next(((m, h) for m, (v, h) in mistakes.items() if abs(share - v) < 1e-6),
                                 ("", "the fraction of samples within 3 RING_STD of EXACT.centers[mode]."))
            fail(f"the share of share_and_spread(samples, mode={mode}) is wrong", f"{expected:.4f}", f"{share:.4f}",
                 hint, mistake)
        valid = _spread_values(points)
        if not min(valid) - 1e-4 <= spread <= max(valid) + 1e-4:
            mistakes = {
                "the distance to the mode's centre, not the spread": (
                    float(np.sqrt((to_mode ** 2).mean())), "the spread is about the samples' own mean: a tight "
                    "blob away from the centre has a small spread."),
                "the two variances added, not averaged": (
                    float(np.sqrt(points.var(axis=0).sum())), "average the two coordinates (the data's blob: 0.25)."),
            }
            mistake, hint = next(((m, h) for m, (v, h) in mistakes.items() if abs(spread - v) < 1e-3),
                                 ("", "the standard deviation of x and of y about the samples' mean, averaged."))
            fail(f"the spread of share_and_spread(samples, mode={mode}) is wrong",
                 f"{min(valid):.4f} to {max(valid):.4f}", f"{spread:.4f}", hint, mistake)


@exercise_check
def check_guidance(guided_field, share_and_spread, predicted_share_w0, w4_prediction) -> None:
    """Exercise 17: ``guided_field(mode, w)`` -> ``velocity(x, t)`` equal to u + w (v_k - u), with u the exact
    marginal field and v_k the exact field of mode k's blob (every algebraically equal form passes, to 1e-3,
    in float32 or float64); ``share_and_spread(samples, mode)`` -> (share within 3 std of the mode's centre,
    standard deviation about the samples' mean averaged over x and y: either average of the two, ddof 0 or 1).
    The two predictions are only checked for their form here; hidden tests grade them."""
    require_callable("guided_field", guided_field)
    require_callable("share_and_spread", share_and_spread)
    _guided_field_problem(guided_field)
    _share_and_spread_problem(share_and_spread)
    share = as_fraction("PREDICTED_SHARE_W0", predicted_share_w0)
    letter = choice("W4_PREDICTION", w4_prediction)
    print(f"Correct: guided_field is u + w (v_k - u) for w = 0, 1, 2.5, 4 and share_and_spread measures as asked; "
          f"PREDICTED_SHARE_W0 = {share:g} and W4_PREDICTION = '{letter}' are recorded (graded later).")


# ----------------------------------------------------------------------------- exercise 18

PERCENTILE_TOLERANCE = 0.01    # numpy's 13 percentile methods differ by up to 0.0015 on these radii


@exercise_check
def check_extrapolation(seen_range, flag_extrapolation, training_radii, requested, rare_prediction=None) -> None:
    """Exercise 18: ``seen_range(radii)`` -> (low, high), the 1st and 99th percentile of the training
    radii, and ``flag_extrapolation(requested, low, high)`` -> one bool per requested radius.

    Every standard percentile convention passes: numpy's 13 ``method`` options (and torch.quantile)
    spread by 0.0003 at the 1st and 0.0015 at the 99th percentile of the 8000 training radii; the
    check allows ``PERCENTILE_TOLERANCE`` = 0.01 and requires that the student's range flags the
    requested radii as the reference range does. ``rare_prediction`` is only checked for its form
    (one letter); a hidden test grades it.
    """
    require_callable("seen_range", seen_range)
    require_callable("flag_extrapolation", flag_extrapolation)
    radii = np.asarray(training_radii, dtype=np.float64)
    expected = np.percentile(radii, [1, 99])
    requested = [float(r) for r in requested]
    want = [not (expected[0] <= r <= expected[1]) for r in requested]
    result = call("seen_range", seen_range, radii.copy())
    try:
        low, high = (float(v) for v in result)
    except (TypeError, ValueError):
        fail("seen_range returned the wrong kind of value", "two numbers (low, high)", _short(result),
             "return a tuple: low, high.")
    agrees = [not (low <= r <= high) for r in requested] == want
    if not (np.allclose([low, high], expected, atol=PERCENTILE_TOLERANCE, rtol=0) and agrees):
        mistakes = {
            "the smallest and largest radius": ((radii.min(), radii.max()), "one straggler decides each end, and "
                                                "radii the model saw a handful of times count as inside."),
            "fractions given to np.percentile": (tuple(np.percentile(radii, [0.01, 0.99])), "np.percentile takes "
                                                 "percents (0 to 100), np.quantile fractions (0 to 1)."),
            "the 5th to 95th percentile": (tuple(np.percentile(radii, [5, 95])),
                                           "this range leaves out the 5% at each end; the exercise asks for 1%."),
            "low and high swapped": ((expected[1], expected[0]), "low is the smaller end of the range."),
        }
        mistake, hint = next(((m, h) for m, (v, h) in mistakes.items()
                              if np.allclose([low, high], v, atol=PERCENTILE_TOLERANCE, rtol=0)),
                             ("", "low = the 1st percentile of the training radii, high = the 99th."))
        fail("seen_range is wrong", f"about ({expected[0]:.3f}, {expected[1]:.3f})", f"({low:.3f}, {high:.3f})",
             hint, mistake)
    result = call("flag_extrapolation", flag_extrapolation, list(requested), float(expected[0]), float(expected[1]))
    try:
        flags = [bool(f) for f in result]
    except TypeError:
        fail("flag_extrapolation returned the wrong kind of value", f"{len(requested)} booleans", _short(result),
             "return one True (outside) or False (inside) per requested radius.")
    if flags != want:
        one_side = "a radius below low is outside as well as one above high."
        named = [("the flags inverted", [not f for f in want], "True means outside the range: extrapolation."),
                 ("only one side of the range flagged", [r > expected[1] for r in requested], one_side),
                 ("only one side of the range flagged", [r < expected[0] for r in requested], one_side)]
        mistake, hint = next(((m, h) for m, v, h in named if flags == v),
                             ("", "True for every radius below low or above high, False for those in between."))
        fail(f"flag_extrapolation is wrong for the radii {requested}", str(want), str(flags), hint, mistake)
    recorded = "" if rare_prediction is None else \
        f"; RARE_PREDICTION = '{choice('RARE_PREDICTION', rare_prediction)}' is recorded (graded later)"
    print(f"Correct: seen radii {expected[0]:.2f} to {expected[1]:.2f}; outside them: "
          f"{[r for r, f in zip(requested, want) if f]}{recorded}.")
