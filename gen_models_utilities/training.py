"""Training a velocity model by flow matching: the chapter's step, repeated.

Each step draws a batch of data x1 (with its condition), a fresh batch x0 from the base, pairs
them with a coupling, draws t and regresses the model's velocity at x_t onto x1 - x0:

    loss = mse(model(x_t, t[, c]), u_t)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

Two choices make it faster than the chapter's loop, and neither changes the lesson: batches
are drawn from memory (``loaders.RandomBatches``) instead of through a DataLoader, and AdamW
updates every tensor in one fused kernel (``make_optimizer``).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import (MAX_SAMPLES, MAX_TRAIN_STEPS, _short, as_conditions, as_labels, as_points, check_choice,
                      check_device, check_flag, check_model, check_module, check_positive_int, check_real,
                      describe_model, make_generator)
from .base_distributions import get_base
from .couplings import get_coupling
from .loaders import RandomBatches, radius_of
from .models import class_code
from .paths import pairs_loss

SCHEDULES = ("constant", "cosine")
TIME_SAMPLINGS = ("uniform", "logit_normal")


def sample_times(n: int, how: str = "uniform", generator: torch.Generator | None = None) -> torch.Tensor:
    """Training times t: (n, 1) in [0, 1].

    'uniform' is the chapter's t ~ U[0, 1]. 'logit_normal' is t = sigmoid(z), z ~ N(0, 1)
    (Esser et al., 2024): it spends fewer steps near t = 0 and t = 1, where the target is easy
    (almost pure noise or almost pure data), and more in the middle, where the modes separate.
    """
    n = check_positive_int("n", n, maximum=MAX_SAMPLES)
    check_choice("how", how, TIME_SAMPLINGS)
    return _times(n, how, make_generator(generator=generator))


def _times(n: int, how: str, generator: torch.Generator | None) -> torch.Tensor:
    if how == "uniform":
        return torch.rand(n, 1, generator=generator)
    return torch.sigmoid(torch.randn(n, 1, generator=generator))


@dataclass
class TrainingResult:
    """What every trainer returns: the loss of every step, the seconds they took, the recipe."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    base: str = "gaussian"
    recipe: dict = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.seconds if self.seconds > 0 else float("nan")


def conditions_for(model: nn.Module, points: torch.Tensor, labels=None, conditions=None) -> torch.Tensor | None:
    """The condition of each data point for ``model``: (N, condition_dim), or None.

    One-hot models take ``labels`` (N,) integers; radius models use each point's distance from
    the origin unless ``conditions`` (N, 1) is given.
    """
    kind = getattr(model, "condition_kind", None)
    width = getattr(model, "condition_dim", 0)
    if labels is not None and kind != "onehot":
        raise ValueError(f"labels are class indices for a one-hot model; {describe_model(model)} takes none: "
                         f"pass labels=None" + (" (its radius is read from each point)" if kind == "radius" else ""))
    if conditions is not None:
        if not width:
            raise ValueError(f"conditions must be None for {describe_model(model)}, got {_short(conditions)}")
        return as_conditions("conditions", conditions, points.shape[0], width)
    if kind == "onehot":
        if labels is None:
            raise ValueError(f"{type(model).__name__} needs labels: pass labels=(N,) class indices")
        return class_code(as_labels("labels", labels, points.shape[0], width), width)
    if kind == "radius":
        return radius_of(points)
    if width:                                  # a condition this function cannot make up
        raise ValueError(f"conditions must be given for {describe_model(model)}: (N, {width}), one row per point")
    return None


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW over ``model``'s parameters, fused where torch has it (2.4 and later on a CPU)."""
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    except RuntimeError:                       # older torch: fused AdamW only on GPUs
        return torch.optim.AdamW(model.parameters(), lr=lr)


def check_trainable(model) -> list[nn.Parameter]:
    """``model`` must be an nn.Module with trainable weights on a real device; returns those weights."""
    check_module("model", model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")
    return parameters


def check_training_budget(n_steps, batch_size, lr, schedule: str) -> tuple[int, int, float]:
    """The arguments every trainer shares, checked once at its boundary."""
    check_choice("schedule", schedule, SCHEDULES)
    return (check_positive_int("n_steps", n_steps, maximum=MAX_TRAIN_STEPS),
            check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES),
            check_real("lr", lr, low=0.0, low_open=True))


def training_step(optimizer: torch.optim.Optimizer, batch_loss) -> float:
    """One step of the chapter: the loss on a fresh batch, autograd's backward, AdamW's update."""
    loss = batch_loss()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def run_steps(model: nn.Module, batch_loss, n_steps: int, lr: float, schedule: str, result: TrainingResult,
              desc: str = "training", progress=None, after_step=None) -> TrainingResult:
    """The loop every trainer shares: ``n_steps`` AdamW steps on the losses of ``batch_loss()``.

    ``batch_loss()`` draws a fresh batch and returns its loss (0-dim, with its autograd graph);
    autograd's ``loss.backward()`` fills every ``.grad``. ``schedule`` 'cosine' decays the rate
    from ``lr`` to 0, 'constant' keeps it. Appends each loss to ``result.losses``, sets
    ``result.seconds``, shows a tqdm bar (``progress``; None: unless GEN_MODELS_PROGRESS=0)
    and leaves the model in eval mode.
    """
    if check_flag("progress", progress, allow_none=True) is None:
        progress = os.environ.get("GEN_MODELS_PROGRESS", "1") != "0"
    optimizer = make_optimizer(model, lr)
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(n_steps), desc=desc, disable=not progress, mininterval=0.5):
        if schedule == "cosine":
            optimizer.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / n_steps))
        result.losses.append(training_step(optimizer, batch_loss))
        if after_step is not None:
            after_step()
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def flow_matching_batch_loss(batches: RandomBatches, base_distribution, pair, rng: torch.Generator | None,
                             model: nn.Module, condition_dropout: float = 0.0, time_sampling: str = "uniform"):
    """``batch_loss()``: the flow matching loss of ``model`` on a fresh batch (0-dim, with its graph).

    Each call draws x1 (B, 2) and its condition from ``batches``, x0 from ``base_distribution``,
    pairs them with the coupling ``pair``, draws t and regresses model(x_t, t[, c]) onto x1 - x0.
    """
    batch_size, device = batches.batch_size, batches.points.device

    def batch_loss() -> torch.Tensor:
        x1, c = batches.sample()
        x0 = pair(base_distribution.sample(batch_size, rng).to(device), x1, c)
        if c is not None and condition_dropout > 0:
            c = c * (torch.rand(batch_size, 1, generator=rng) >= condition_dropout).to(device)
        t = _times(batch_size, time_sampling, rng).to(device)
        return pairs_loss(model, x0, x1, t, c)

    return batch_loss


def train(model: nn.Module, data, base: str = "gaussian", n_steps: int = 2000, batch_size: int = 256,
          lr: float = 1e-3, schedule: str = "cosine", labels=None, conditions=None,
          coupling="independent", condition_dropout: float = 0.0, ema_decay: float | None = None,
          time_sampling: str = "uniform", seed=None,
          generator: torch.Generator | None = None, progress=None,
          device: torch.device | str | None = None) -> TrainingResult:
    """Train ``model`` by flow matching from ``base`` to the points ``data``.

    Args:
        model: a velocity model of this package (any ``model(x, t[, c])`` module works).
        data: (N, 2) points, array or tensor.
        base: a name of ``base_distributions.BASES``; a fresh base batch is drawn every step.
        n_steps, batch_size, lr: optimisation budget; AdamW with ``schedule`` 'cosine' (decays
            to 0, which settles the field) or 'constant' (the chapter's).
        labels: (N,) class indices for one-hot models. conditions: (N, C) explicit conditions.
        coupling: 'independent' (the chapter's random pairs), 'ot', 'class_ot' or a callable.
        condition_dropout: probability of replacing a condition by zeros (the "null" condition
            of classifier-free guidance).
        ema_decay: if given (e.g. 0.999), keep an exponential moving average of the weights and
            leave the model holding it at the end: a cheap way to smooth out the last steps' noise.
        time_sampling: how t is drawn each step, 'uniform' (the chapter's) or 'logit_normal'
            (see ``sample_times``).
        seed, generator: make the run reproducible without global random state.
        progress: show a tqdm progress bar (None: unless GEN_MODELS_PROGRESS=0).
        device: where to train (default: the model's device).

    Returns:
        a TrainingResult with the loss of every step.
    """
    parameters = check_trainable(model)
    check_model(model, dim=2)
    base_distribution = get_base(base)
    n_steps, batch_size, lr = check_training_budget(n_steps, batch_size, lr, schedule)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    condition_dropout = check_real("condition_dropout", condition_dropout, low=0.0, high=1.0)
    if ema_decay is not None:
        ema_decay = check_real("ema_decay", ema_decay, low=0.0, high=1.0)
    pair = get_coupling(coupling)
    rng = make_generator(seed, generator)
    points = as_points("data", data)
    cond = conditions_for(model, points, labels, conditions)
    if getattr(model, "condition_kind", None) == "radius":
        model.trained_radius_range.copy_(torch.quantile(cond[:, 0], torch.tensor([0.01, 0.99], device=cond.device)))
    device = check_device("device", device) or parameters[0].device
    model.to(device)
    batches = RandomBatches(points, batch_size, cond, generator=rng, device=device)

    batch_loss = flow_matching_batch_loss(batches, base_distribution, pair, rng, model, condition_dropout,
                                          time_sampling)

    ema = [p.detach().clone() for p in parameters] if ema_decay is not None else None

    @torch.no_grad()
    def update_average() -> None:
        for average, p in zip(ema, parameters):
            average.lerp_(p, 1 - ema_decay)

    result = TrainingResult(base=base_distribution.name, recipe={
        "n_steps": n_steps, "batch_size": batch_size, "lr": lr, "schedule": schedule,
        "coupling": coupling if isinstance(coupling, str) else getattr(coupling, "__name__", "custom"),
        "condition_dropout": condition_dropout, "ema_decay": ema_decay, "time_sampling": time_sampling})
    run_steps(model, batch_loss, n_steps, lr, schedule, result, progress=progress,
              after_step=update_average if ema is not None else None)
    if ema is not None:
        with torch.no_grad():
            for p, average in zip(parameters, ema):
                p.copy_(average)
    return result
