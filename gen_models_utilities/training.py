"""One training routine for every velocity model of the package.

Each step draws a batch of data (with its condition), a fresh batch from the base
distribution, pairs them with a coupling, draws t ~ U[0, 1] and regresses the model's velocity
at x_t onto the per-pair velocity x1 - x0.

On a CPU a step takes less than half the time of the chapter's loop (``make bench``): batches
come from memory, not a DataLoader; AdamW updates every tensor in one fused kernel; freed
memory is kept for the next step (``memory``); and the package's own models get their
gradients from a hand-written backward pass (``mlp_gradients``) instead of autograd's graph.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import (MAX_SAMPLES, MAX_TRAIN_STEPS, as_conditions, as_labels, as_points, check_choice,
                      check_device, check_positive_int, check_real, make_generator)
from .base_distributions import canonical_base_name, sample_base
from .couplings import get_coupling, independent_coupling
from .loaders import RandomBatches, radius_of
from .memory import keep_freed_memory
from .mlp_gradients import VelocityModelGradients
from .paths import unchecked_path_point

SCHEDULES = ("constant", "cosine")
TIME_SAMPLINGS = ("uniform", "logit_normal")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float, schedule: str, step: int, n_steps: int) -> None:
    """Set the rate of ``step`` of ``n_steps``: ``lr`` ('constant') or cosine-decayed to 0 ('cosine')."""
    if schedule == "cosine":
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / n_steps))


def sample_times(n: int, how: str = "uniform", generator: torch.Generator | None = None) -> torch.Tensor:
    """Training times t: (n, 1) in [0, 1].

    'uniform' is the chapter's t ~ U[0, 1]. 'logit_normal' is t = sigmoid(z), z ~ N(0, 1)
    (Esser et al., 2024): it spends fewer steps near t = 0 and t = 1, where the target is easy
    (almost pure noise or almost pure data), and more in the middle, where the modes separate.
    """
    if how == "uniform":
        return torch.rand(n, 1, generator=generator)
    return torch.sigmoid(torch.randn(n, 1, generator=generator))


@dataclass
class TrainingResult:
    """What ``train`` returns: the loss of every step and how long it took."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    base: str = "gaussian"
    recipe: dict = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.seconds if self.seconds > 0 else float("nan")

    def smoothed(self, window: int = 50) -> list[float]:
        """Running mean of the losses over ``window`` steps, for a readable curve."""
        losses = torch.tensor(self.losses)
        if len(losses) < window:
            return losses.tolist()
        return losses.unfold(0, window, 1).mean(dim=1).tolist()


def conditions_for(model: nn.Module, points: torch.Tensor, labels=None, conditions=None) -> torch.Tensor | None:
    """The condition of each data point for ``model``: (N, condition_dim), or None.

    One-hot models take ``labels`` (N,) integers; radius models use each point's distance from
    the origin unless ``conditions`` (N, 1) is given.
    """
    kind = getattr(model, "condition_kind", None)
    if conditions is not None:
        return as_conditions("conditions", conditions, points.shape[0], getattr(model, "condition_dim", 0))
    if kind == "onehot":
        if labels is None:
            raise ValueError(f"{type(model).__name__} needs labels: pass labels=(N,) class indices")
        n_classes = model.condition_dim
        return nn.functional.one_hot(as_labels("labels", labels, points.shape[0], n_classes), n_classes).float()
    if kind == "radius":
        return radius_of(points)
    if labels is not None:
        raise ValueError(f"{type(model).__name__} is unconditional; labels must be None")
    return None


def _progress_enabled(progress) -> bool:
    if progress is None:
        return os.environ.get("GEN_MODELS_PROGRESS", "1") != "0"
    return bool(progress)


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW over ``model``'s parameters, as every trainer of the package uses it.

    Fused where torch has it (2.4 and later on a CPU): one kernel updates every tensor, where
    the per-tensor loop costs about a third of a small model's step.
    """
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    except RuntimeError:                       # older torch: fused AdamW only on GPUs
        return torch.optim.AdamW(model.parameters(), lr=lr)


def backpropagate(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """Clear the gradients of ``optimizer``'s parameters, fill them with d(loss)/d(theta), return loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return loss


def regression_step(model: nn.Module, optimizer: torch.optim.Optimizer, gradients: VelocityModelGradients | None,
                    x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """mean((model(x, t[, condition]) - target)^2) for one built batch, its gradients left in every ``.grad``.

    ``gradients`` (a VelocityModelGradients for ``model``, or None) computes them by hand; with
    None, autograd does. Shapes: x, target (B, 2); t (B, 1); condition (B, C) or None.
    Flow matching regresses onto u_t at x_t, diffusion onto the noise at x_s.
    """
    if gradients is not None:                  # writes every .grad; no autograd graph
        return gradients.mse_backward(x, t, condition, target)
    prediction = model(x, t) if condition is None else model(x, t, condition)
    return backpropagate(optimizer, nn.functional.mse_loss(prediction, target))


def run_steps(model: nn.Module, optimizer: torch.optim.Optimizer, result: TrainingResult, n_steps: int,
              lr: float, schedule: str, step_loss, desc: str = "training", progress=None,
              after_step=None) -> TrainingResult:
    """The loop every trainer of the package shares.

    Each step sets the learning rate (``set_learning_rate``), calls ``step_loss(step)``, which
    draws its batch and leaves the gradients in every ``.grad`` (see ``backpropagate``) and
    returns the loss (0-dim), takes one optimiser step, then calls ``after_step()`` if given.
    Shows a tqdm bar (see ``train``'s ``progress``), appends each loss to ``result.losses``,
    sets ``result.seconds`` and leaves the model in eval mode.
    """
    from tqdm.auto import tqdm

    keep_freed_memory()                        # no page faults on each step's fresh activations
    bar = tqdm(total=n_steps, desc=desc, disable=not _progress_enabled(progress), mininterval=0.5)
    model.train()
    start = time.perf_counter()
    for step in range(n_steps):
        set_learning_rate(optimizer, lr, schedule, step, n_steps)
        loss = step_loss(step)
        optimizer.step()
        if after_step is not None:
            after_step()
        result.losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}", refresh=False)
        bar.update(1)
    result.seconds = time.perf_counter() - start
    bar.close()
    model.eval()
    return result


def train(model: nn.Module, data, base: str = "gaussian", n_steps: int = 2000, batch_size: int = 256,
          lr: float = 1e-3, schedule: str = "cosine", labels=None, conditions=None,
          coupling="independent", condition_dropout: float = 0.0, ema_decay: float | None = None,
          time_sampling: str = "uniform", seed=None,
          generator: torch.Generator | None = None, progress=None,
          device: torch.device | str | None = None) -> TrainingResult:
    """Train ``model`` by flow matching from ``base`` to the points ``data``.

    Args:
        model: a velocity model of this package (any ``model(x, t[, c])`` works).
        data: (N, 2) points, array or tensor.
        base: 'gaussian', 'uniform' or 'ethz_logo'; a fresh base batch is drawn every step.
        n_steps, batch_size, lr: optimisation budget; AdamW with ``schedule`` 'cosine' (decays
            to 0, which settles the field) or 'constant' (the chapter's).
        labels: (N,) class indices for one-hot models. conditions: (N, C) explicit conditions.
        coupling: 'independent' (the chapter's random pairs), 'ot', 'class_ot' or a callable.
        condition_dropout: probability of replacing a condition by zeros (the "null" condition
            of classifier-free guidance).
        time_sampling: how t is drawn each step, 'uniform' (the chapter's) or 'logit_normal'
            (see ``sample_times``).
        ema_decay: if given (e.g. 0.999), keep an exponential moving average of the weights and
            leave the model holding it at the end: a cheap way to smooth out the last steps' noise.
        seed, generator: make the run reproducible without global random state.
        progress: show a tqdm progress bar (None: unless GEN_MODELS_PROGRESS=0).
        device: where to train (default: the model's device).

    Returns:
        a TrainingResult with the loss of every step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")
    from .solvers import check_model

    check_model(model)
    base = canonical_base_name(base)
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_TRAIN_STEPS)
    batch_size = check_positive_int("batch_size", batch_size, maximum=MAX_SAMPLES)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    check_choice("schedule", schedule, SCHEDULES)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    condition_dropout = check_real("condition_dropout", condition_dropout, low=0.0, high=1.0)
    if ema_decay is not None:
        ema_decay = check_real("ema_decay", ema_decay, low=0.0, high=1.0)
    pair = get_coupling(coupling)
    rng = make_generator(seed, generator)
    points = as_points("data", data)
    cond = conditions_for(model, points, labels, conditions)
    if getattr(model, "condition_kind", None) == "radius":
        model.trained_radius_range.copy_(torch.stack([cond.min(), cond.max()]))
    device = check_device("device", device) or next(model.parameters()).device
    model.to(device)
    batches = RandomBatches(points, batch_size, cond, generator=rng, device=device)
    optimizer = make_optimizer(model, lr)
    result = TrainingResult(base=base, recipe={
        "n_steps": n_steps, "batch_size": batch_size, "lr": lr, "schedule": schedule,
        "coupling": coupling if isinstance(coupling, str) else getattr(coupling, "__name__", "custom"),
        "condition_dropout": condition_dropout, "ema_decay": ema_decay,
        "time_sampling": time_sampling})
    gradients = VelocityModelGradients.for_model(model)

    def step_loss(step: int) -> torch.Tensor:
        x1, c = batches.sample()
        x0 = sample_base(base, batch_size, generator=rng).to(device)
        if pair is not independent_coupling:       # random pairs need no work: x0 as drawn
            x0 = pair(x0, x1, c)
        if c is not None and condition_dropout > 0:
            keep = (torch.rand(batch_size, 1, generator=rng) >= condition_dropout).to(device)
            c = c * keep
        t = sample_times(batch_size, time_sampling, rng).to(device)
        x_t, u_t = unchecked_path_point(x0, x1, t)
        return regression_step(model, optimizer, gradients, x_t, t, c, u_t)

    parameters = [p for p in model.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in parameters] if ema_decay is not None else None

    def update_average() -> None:
        torch._foreach_lerp_(ema, [p.detach() for p in parameters], 1 - ema_decay)

    run_steps(model, optimizer, result, n_steps, lr, schedule, step_loss, progress=progress,
              after_step=update_average if ema is not None else None)
    if ema is not None:
        with torch.no_grad():
            for p, averaged in zip(parameters, ema):
                p.copy_(averaged)
    return result
