"""The straight-line probability path of flow matching and its regression loss.

For a pair (x0, x1) and a time t the path point and its velocity are
    x_t = (1 - t) x0 + t x1,        u_t = d x_t / dt = x1 - x0.
u_t is the *conditional* (per-pair) velocity. Many pairs pass through the same x_t with
different u_t, so the network can only learn their average, the marginal velocity field, and
the loss keeps a floor above zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import _short, check_has_values, check_real, make_generator


def _check_pair(x0, x1) -> None:
    """x0 and x1 must be real tensors of one shape, holding values."""
    for name, value in (("x0", x0), ("x1", x1)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, 2), got {_short(value)}")
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got {_short(value)}")
        check_has_values(name, value)
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")


def _check_time(t, x0: torch.Tensor):
    """t: a finite number, or a finite tensor whose last dimension is 1, e.g. (B, 1)."""
    if not isinstance(t, torch.Tensor):
        return check_real("t", t)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must hold real times, got {_short(t)}")
    check_has_values("t", t)
    try:
        fits = (t.dim() == 0 or t.shape[-1] == 1) and torch.broadcast_shapes(t.shape, x0.shape) == x0.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"t must be a number or have shape (B, 1) for x0 of shape {tuple(x0.shape)}, "
                         f"got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("t must not contain NaN or inf values")
    return t


def unchecked_path_point(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t = (1 - t) x0 + t x1 and u_t = x1 - x0, without argument checks (for training loops
    that built the batch themselves). Shapes: x0, x1 (B, 2), t (B, 1) -> x_t, u_t (B, 2)."""
    return (1 - t) * x0 + t * x1, x1 - x0


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Point on the straight line from x0 to x1 at time t: x0, x1 (B, 2), t (B, 1) -> (B, 2)."""
    _check_pair(x0, x1)
    return unchecked_path_point(x0, x1, _check_time(t, x0))[0]


def conditional_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Velocity of the straight path, the same at every t: (B, 2), (B, 2) -> (B, 2)."""
    _check_pair(x0, x1)
    return x1 - x0


@dataclass
class PathSample:
    """One batch of points on the path. Shapes: x0, x1, x_t, u_t (B, 2); t (B, 1)."""

    x0: torch.Tensor
    x1: torch.Tensor
    t: torch.Tensor
    x_t: torch.Tensor
    u_t: torch.Tensor


def sample_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> PathSample:
    """Draw t ~ U[0, 1] (unless given) and return the path point and its target velocity."""
    _check_pair(x0, x1)
    if x0.dim() != 2:
        raise ValueError(f"x0 must have shape (B, D), got shape {tuple(x0.shape)}")
    if t is None:
        t = torch.rand(x0.shape[0], 1, generator=make_generator(generator=generator)).to(x0.device)
    return PathSample(x0, x1, t, interpolate(x0, x1, t), conditional_velocity(x0, x1))


def flow_matching_loss(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       condition: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between v_theta(x_t, t[, c]) and the per-pair target x1 - x0."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t[, condition]), got {_short(model)}")
    _check_pair(x0, x1)
    t = _check_time(t, x0)
    x_t, u_t = unchecked_path_point(x0, x1, t)
    prediction = model(x_t, t) if condition is None else model(x_t, t, condition)
    return nn.functional.mse_loss(prediction, u_t)
