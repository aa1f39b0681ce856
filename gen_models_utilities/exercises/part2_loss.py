"""Checks of the exercise notebook's Part 2, the loss (17.4): exercises 5 to 8."""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import _short
from ..data import RING_RADIUS, RING_STD, create_ring_gaussians
from ..metrics import ring_quality
from ..paths import conditional_velocity, flow_matching_loss, interpolate
from ..solvers import generate
from ._harness import (RTOL, LinearProbe, call, check_finite,
                       exercise_check, fail, fixed_pairs, grade_choice, require_callable)

# ----------------------------------------------------------------------------- was exercise 4


@exercise_check
def check_loss(fm_loss) -> None:
    """Exercise 4: ``fm_loss(model, x0, x1, t)`` -> a scalar tensor (the flow matching loss).

    Compared with ``paths.flow_matching_loss`` on ``LinearProbe``, a model with fixed parameters.
    """
    require_callable("fm_loss", fm_loss)
    model = LinearProbe()
    x0, x1, t = fixed_pairs(128, seed=1)
    value = call("fm_loss", fm_loss, model, x0.clone(), x1.clone(), t.clone())
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        fail("fm_loss returned the wrong kind of value", "a scalar torch.Tensor", _short(value),
              "return the mean squared error as a tensor (not .item()), so that loss.backward() works.")
    if not value.requires_grad:
        fail("fm_loss returned a tensor that autograd cannot differentiate",
              "a loss that depends on the model's parameters", "a tensor with requires_grad=False",
              "do not use torch.no_grad(), .detach() or .item() inside the loss.")
    check_finite("fm_loss", value.detach())
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
        fail("fm_loss gives the wrong value on a fixed model and batch", f"{expected:.5f}", f"{received:.5f}", hint)
    print("Correct: fm_loss matches the flow matching loss and can be backpropagated.")


# ----------------------------------------------------------------------------- was exercise 5


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


@exercise_check
def check_loss_floor(answer, floor_at_t0) -> None:
    """Exercise 5: the multiple-choice ``answer`` ('a'..'d') to why the loss stays above zero, and
    ``floor_at_t0``: the loss the best possible predictor still has at t = 0 (a number).

    For the ring, that floor is the data's variance per coordinate, R^2 / 2 + sigma^2 = 4.5625.
    """
    choice = grade_choice("ANSWER", answer, _LOSS_FLOOR_ANSWER, _LOSS_FLOOR_HINTS)
    exact = RING_RADIUS ** 2 / 2 + RING_STD ** 2
    try:
        value = float(floor_at_t0)
    except (TypeError, ValueError):
        fail("floor_at_t0 is not a number", f"about {exact:.3f}", _short(floor_at_t0),
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
        fail("floor_at_t0 is off", f"about {exact:.3f}", f"{value:.3f}", hint)
    print(f"Correct: ({choice}) and the floor at t = 0 is about {exact:.2f}, whatever the network.")


# ----------------------------------------------------------------------------- was exercise 6


TRAINING_BUDGET = 2000          # steps the training exercise may take
OFF_MODE_THRESHOLD = 0.10       # the share off every mode the trained model must stay under


@exercise_check
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
        fail("losses is not a list of numbers", "one float per training step", _short(losses),
              "append loss.item() after every step and return the list.")
    if not 0 < len(losses) <= TRAINING_BUDGET:
        fail("the training budget is exceeded", f"at most {TRAINING_BUDGET} steps", f"{len(losses)} steps",
              "reach the threshold with fewer steps: a learning rate that decays to 0 settles the field sooner.")
    with torch.no_grad():
        samples = call("sampling your model", generate, model, n_samples, n_steps=n_steps, seed=seed).x
    if not bool(torch.isfinite(samples).all()):
        fail("the trained model's samples are NaN or inf", "finite samples",
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
        fail("the trained model's samples are not good enough",
              f"at most {100 * OFF_MODE_THRESHOLD:.0f}% off every mode and every mode near its share",
              str(quality), hint)
    print(f"Correct: in {len(losses)} steps, {100 * quality.off_mode_fraction:.1f}% off every mode "
          f"(threshold {100 * OFF_MODE_THRESHOLD:.0f}%, data {100 * math.exp(-4.5):.1f}%), every mode near its share.")

