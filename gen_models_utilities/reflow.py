"""Reflow (rectified flow): straighten a trained flow by retraining it on its own pairs.

A trained model carries each base point x0 to some x1 = ODE(x0). Two ODE trajectories never
pass through the same point at the same time, but the straight chords x0 -> x1 between their
end points can cross, so a model trained on these pairs (with the usual straight-line loss)
learns a field that is straighter, not straight: the paths become straight only in the limit
of repeated reflow. The new model learns the teacher's coupling, so it inherits the teacher's
errors (its x1 are the teacher's samples, not data).

    pairs = reflow_pairs(model, 8000, seed=1)          # x0 (N, 2), x1 (N, 2), conditions
    result = train_on_pairs(model_copy, pairs, n_steps=1000, seed=2)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import (MAX_ODE_STEPS, MAX_SAMPLES, as_conditions, as_points, check_choice, check_model,
                      check_point_steps, check_positive_int, make_generator)
from .base_distributions import sample_base
from .loaders import RandomBatches
from .paths import pairs_loss
from .solvers import broadcast_condition, solve_ode, solver_names
from .training import TIME_SAMPLINGS, TrainingResult, _times, check_trainable, check_training_budget, run_steps


@dataclass
class ReflowPairs:
    """A fixed coupling made by a model. x0, x1: (N, 2); conditions: (N, C) or None."""

    x0: torch.Tensor
    x1: torch.Tensor
    conditions: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x0.shape[0]


@torch.no_grad()
def reflow_pairs(model: nn.Module, n_pairs: int = 8000, base: str = "gaussian", method: str = "rk4",
                 n_steps: int = 25, conditions=None, seed=None,
                 generator: torch.Generator | None = None) -> ReflowPairs:
    """Draw ``n_pairs`` base points and carry each to t = 1 with ``model``: the reflow coupling.

    Args:
        model: a trained velocity model.
        base: the base distribution the model was trained from.
        method, n_steps: the solver that makes the pairs; it should be accurate (the new
            model can only be as good as its targets), e.g. 'rk4' with 25 steps.
        conditions: (N, C) one condition per pair, or (C,) for all, for conditional models.
        seed, generator: make the draw of x0 reproducible.
    """
    device = check_trainable(model)[0].device
    check_model(model, dim=2)
    n_pairs = check_positive_int("n_pairs", n_pairs, maximum=MAX_SAMPLES)
    check_point_steps(check_positive_int("n_steps", n_steps, maximum=MAX_ODE_STEPS), n_pairs, f"n_pairs={n_pairs}")
    check_choice("method", method, solver_names())
    conditions = broadcast_condition(conditions, n_pairs, model, name="conditions")
    x0 = sample_base(base, n_pairs, seed=seed, generator=generator, device=device)
    solution = solve_ode(model, x0, n_steps=n_steps, method=method, condition=conditions)
    return ReflowPairs(x0, solution.x, None if conditions is None else conditions.clone())


def train_on_pairs(model: nn.Module, pairs: ReflowPairs, n_steps: int = 1000, batch_size: int = 256,
                   lr: float = 1e-3, schedule: str = "cosine", time_sampling: str = "uniform", seed=None,
                   generator: torch.Generator | None = None, progress=None) -> TrainingResult:
    """Regress ``model`` onto x1 - x0 along the straight lines of fixed ``pairs`` (one reflow).

    The same loss and training loop as ``training.train``, but each batch takes
    whole pairs (x0, x1[, condition]) instead of pairing fresh base points with data.
    Start from a copy of the model that made the pairs: it already knows the endpoints.
    time_sampling: how t is drawn, 'uniform' or 'logit_normal' (see ``training.sample_times``).
    progress: show a tqdm bar (None: unless GEN_MODELS_PROGRESS=0).
    """
    device = check_trainable(model)[0].device
    check_model(model, dim=2)
    if not isinstance(pairs, ReflowPairs):
        raise TypeError(f"pairs must be a ReflowPairs (from reflow_pairs), got {type(pairs).__name__}")
    n_steps, batch_size, lr = check_training_budget(n_steps, batch_size, lr, schedule)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    x0, x1 = as_points("pairs.x0", pairs.x0), as_points("pairs.x1", pairs.x1)
    if x0.shape != x1.shape:
        raise ValueError(f"pairs.x0 and pairs.x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    width = getattr(model, "condition_dim", 0)
    if (pairs.conditions is None) != (not width):
        raise ValueError(f"{type(model).__name__} takes conditions of width {width}; pairs.conditions is "
                         f"{'missing' if pairs.conditions is None else tuple(pairs.conditions.shape)}")
    conditions = pairs.conditions if pairs.conditions is None else \
        as_conditions("pairs.conditions", pairs.conditions, len(x1), width)
    rng = make_generator(seed, generator)
    # The partner x0 travels with each x1 as an extra "condition" column block, so that a
    # batch always holds whole pairs.
    extras = x0 if conditions is None else torch.cat([x0, conditions.to(x0.device)], dim=1)
    batches = RandomBatches(x1, batch_size, extras, generator=rng, device=device)

    def batch_loss() -> torch.Tensor:
        x1_batch, extra = batches.sample()
        x0_batch, condition = extra[:, :2], (extra[:, 2:] if width else None)
        return pairs_loss(model, x0_batch, x1_batch, _times(batch_size, time_sampling, rng).to(device), condition)

    result = TrainingResult(recipe={"n_steps": n_steps, "batch_size": batch_size, "lr": lr,
                                    "schedule": schedule, "time_sampling": time_sampling,
                                    "coupling": "reflow"})
    return run_steps(model, batch_loss, n_steps, lr, schedule, result, desc="reflow", progress=progress)
