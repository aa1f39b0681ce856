"""The straight-line probability path of flow matching and its regression loss.

For a pair (x0, x1) and a time t the path point and its velocity are
    x_t = (1 - t) x0 + t x1,        u_t = d x_t / dt = x1 - x0.
u_t is the *conditional* (per-pair) velocity. Many pairs pass through the same x_t with
different u_t, so the network can only learn their average, the marginal velocity field, and
the loss keeps a floor above zero.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import _short, check_model, check_real
from .models import call_model
from .solvers import broadcast_condition


def _check_pair(x0, x1, t=0.0) -> None:
    """Refuse shapes that would broadcast into a wrong answer, e.g. t (B,) against x0 (B, 2) when B = 2.

    Only shapes and dtypes of tensors are read, never their values.
    """
    if not (isinstance(x0, torch.Tensor) and isinstance(x1, torch.Tensor)):
        raise TypeError(f"x0 and x1 must be torch.Tensors of shape (B, D), got {_short(x0)} and {_short(x1)}")
    for name, value in (("x0", x0), ("x1", x1), ("t", t)):
        if isinstance(value, torch.Tensor) and (value.dtype == torch.bool or value.is_complex()):
            raise TypeError(f"{name} must hold real numbers, got {_short(value)}")
    if x0.dim() != 2 or x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape (B, D), got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if not isinstance(t, torch.Tensor):
        check_real("t", t)
    elif t.shape not in ((), (1, 1), (x0.shape[0], 1)):
        raise ValueError(f"t must be a number or have shape ({x0.shape[0]}, 1) for x0 of shape "
                         f"{tuple(x0.shape)}, got shape {tuple(t.shape)}")


def _point(x0: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
    return (1 - t) * x0 + t * x1


def _velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    return x1 - x0


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
    """Point on the straight line from x0 to x1 at time t: x0, x1 (B, D), t (B, 1) or a float -> (B, D)."""
    _check_pair(x0, x1, t)
    return _point(x0, x1, t)


def conditional_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Velocity of the straight path, the same at every t: (B, D), (B, D) -> (B, D)."""
    _check_pair(x0, x1)
    return _velocity(x0, x1)


def pairs_loss(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
               condition: torch.Tensor | None = None) -> torch.Tensor:
    """One training step's loss on pairs a trainer drew itself: mse(v(x_t, t[, c]), x1 - x0), 0-dim.

    The trainers call it every step on batches they built, so nothing is checked here; their
    arguments were checked once, at their door. x0, x1 (B, D), t (B, 1), condition (B, C) or None.
    """
    return nn.functional.mse_loss(call_model(model, _point(x0, x1, t), t, condition), _velocity(x0, x1))


def flow_matching_loss(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       condition: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between v_theta(x_t, t[, c]) and the per-pair target x1 - x0."""
    _check_pair(x0, x1, t)
    check_model(model, dim=x0.shape[1], points="x0")
    return pairs_loss(model, x0, x1, t, broadcast_condition(condition, x0.shape[0], model))
