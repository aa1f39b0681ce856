"""Checks of the exercise notebook's Part 4, conditioning (17.6): exercises 16 to 18."""
from __future__ import annotations


import numpy as np
import torch

from ..data import RING_RADIUS, RING_STD, ring_mode_centers
from ..guidance import GuidedVelocity
from ..metrics import distance_to_nearest_mode
from ..models import class_code
from ..solvers import generate
from ._harness import (as_tensor, call, close, compare, exercise_check, fail, grade_choice, require_callable,
                       vector)

# ----------------------------------------------------------------------------- was exercise 12


@exercise_check
def check_conditional_sampling(sample_mode, model, modes=(0, 3, 6), n_samples: int = 200,
                               n_steps: int = 20, seed: int = 7) -> None:
    """Exercise 12: ``sample_mode(model, mode, n_samples, n_steps, seed)`` -> (n_samples, 2).

    ``model`` is a one-hot conditional model (``ConditionalVelocityField``). The answer must
    start from ``sample_base('gaussian', n_samples, seed=seed)`` and follow the field with the
    one-hot code of ``mode`` for ``n_steps`` Euler steps, as ``solvers.generate`` does.
    """
    require_callable("sample_mode", sample_mode)
    n_classes = getattr(model, "condition_dim", 0)
    if getattr(model, "condition_kind", None) != "onehot":
        raise TypeError(f"model must be a one-hot conditional model (ConditionalVelocityField), "
                        f"got {type(model).__name__}")
    centers = torch.from_numpy(ring_mode_centers(n_classes, RING_RADIUS))
    for mode in modes:
        code = class_code(mode, n_classes)
        with torch.no_grad():
            received = call("sample_mode", sample_mode, model, mode, n_samples, n_steps, seed)
            expected = generate(model, n_samples, base="gaussian", n_steps=n_steps, condition=code, seed=seed).x.cpu()
        received = as_tensor("sample_mode", received, (n_samples, 2))
        if close(received, expected, atol=1e-3):
            continue
        distance, nearest = distance_to_nearest_mode(received, n_classes, RING_RADIUS)
        near = distance <= 3 * RING_STD
        hit = float((near & (nearest == mode)).mean())
        counts = torch.bincount(torch.from_numpy(nearest[near]), minlength=n_classes)
        landed = f"{100 * hit:.0f}% at mode {mode}"
        if int(counts.sum()) > n_samples // 2 and int(counts.argmax()) != mode:
            landed += f", most at mode {int(counts.argmax())}"
        elif int(counts.sum()) <= n_samples // 2:
            landed += f", {100 * float(1 - near.mean()):.0f}% far from every mode"
        if hit > 0.5:
            hint = ("the mode is right but the points are not the reference's: start from "
                    "sample_base('gaussian', n_samples, seed=seed) and take exactly n_steps Euler steps "
                    "from t = 0 to 1.")
        else:
            hint = (f"condition on the one-hot code of mode {mode}, "
                    f"one_hot(torch.tensor([{mode}]), {n_classes}).float(), at every step.")
        fail(f"sample_mode(mode={mode}) gives the wrong samples",
              f"samples near the centre {vector(centers[mode])} (first sample {vector(expected[0])})",
              f"{landed} (first sample {vector(received[0])})", hint)
    print(f"Correct: sample_mode draws the requested modes {list(modes)} exactly like the reference sampler.")


# ----------------------------------------------------------------------------- was exercise 13


_GUIDANCE_HINTS = {
    "a": "that is w = 0: the unconditional field, which spreads samples over all modes.",
    "b": "that is w = 1, the plain conditional model; w > 1 goes further along v_cond - v_uncond.",
    "d": "the difference v_cond - v_uncond points towards the requested mode and away from the rest, "
         "not to the centre.",
}


@exercise_check
def check_guidance(guided_velocity, answer, model, scales=(0.0, 1.0, 3.5)) -> None:
    """Exercise 13: ``guided_velocity(model, code, w)`` -> a function ``velocity(x, t)`` equal to
    v_uncond + w (v_cond - v_uncond) (``guidance.GuidedVelocity``), and ``answer``: what a large w does."""
    require_callable("guided_velocity", guided_velocity)
    if getattr(model, "condition_kind", None) != "onehot":
        raise TypeError(f"model must be a one-hot conditional model, got {type(model).__name__}")
    generator = torch.Generator().manual_seed(60)
    x, t = 3 * torch.randn(64, 2, generator=generator), 0.4
    code = class_code([2], model.condition_dim)
    with torch.no_grad():
        v_cond, v_uncond = model(x, t, code), model(x, t, torch.zeros_like(code))
        for w in scales:
            velocity = call("guided_velocity", guided_velocity, model, code, w)
            require_callable("guided_velocity(...)", velocity)
            name = "guided_velocity(model, code, w)(x, t)"
            received = as_tensor(name, call(name, velocity, x.clone(), t), x.shape)
            expected = GuidedVelocity(model, code, w)(x, t)
            where = lambda i: f"at t = {t}, x = {vector(x[i])}"  # noqa: E731
            compare(f"the guided field for w = {w}", received, expected, where, {
                "the two fields are swapped: start from v_uncond and move w times towards v_cond.":
                    v_cond + w * (v_uncond - v_cond),
                "that is w v_cond alone; guidance scales the difference v_cond - v_uncond.": w * v_cond,
                "start from v_uncond, not v_cond: v_uncond + w (v_cond - v_uncond).": v_cond + w * (v_cond - v_uncond),
            }, "v = v_uncond + w (v_cond - v_uncond), with v_uncond = model(x, t, zero code).")
    grade_choice("LARGE_W_ANSWER", answer, "c", _GUIDANCE_HINTS)
    print(f"Correct: the guided field matches v_uncond + w (v_cond - v_uncond) for w = {list(scales)}.")


# ----------------------------------------------------------------------------- was exercise 14


@exercise_check
def check_extrapolation(seen_range, flag_extrapolation, training_radii, requested) -> None:
    """Exercise 14: ``seen_range(radii)`` -> (low, high), the 1st and 99th percentile of the training
    radii, and ``flag_extrapolation(requested, low, high)`` -> one bool per requested radius."""
    require_callable("seen_range", seen_range)
    require_callable("flag_extrapolation", flag_extrapolation)
    radii = np.asarray(training_radii, dtype=np.float64)
    expected = np.percentile(radii, [1, 99])
    try:
        low, high = (float(v) for v in call("seen_range", seen_range, radii.copy()))
    except (TypeError, ValueError):
        fail("seen_range returned the wrong kind of value", "two numbers (low, high)", "something else",
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
        fail("seen_range is wrong", f"({expected[0]:.3f}, {expected[1]:.3f})", f"({low:.3f}, {high:.3f})", hint)
    requested = [float(r) for r in requested]
    want = [not (expected[0] <= r <= expected[1]) for r in requested]
    try:
        flags = [bool(f) for f in call("flag_extrapolation", flag_extrapolation, list(requested), float(expected[0]),
                                        float(expected[1]))]
    except TypeError:
        fail("flag_extrapolation returned the wrong kind of value", f"{len(requested)} booleans",
              "something that is not a list", "return one True (outside) or False (inside) per requested radius.")
    if flags != want:
        hint = ("the flags are inverted: True means outside the range (extrapolation)."
                if flags == [not f for f in want] else
                "True for every radius below low or above high, False for those in between.")
        fail(f"flag_extrapolation is wrong for the radii {requested}", str(want), str(flags), hint)
    print(f"Correct: seen radii {expected[0]:.2f} to {expected[1]:.2f}; outside them: "
          f"{[r for r, f in zip(requested, want) if f]}.")
