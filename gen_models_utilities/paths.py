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

from ._checks import _short, check_model, check_real, make_generator


def _check_pair(x0, x1, t=0.0) -> None:
    """Refuse shapes that would broadcast into a wrong answer, e.g. t (B,) against x0 (B, 2) when B = 2.

    Only shapes and dtypes of tensors are read, never their values: cheap enough for every training step.
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


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
    """Point on the straight line from x0 to x1 at time t: x0, x1 (B, 2), t (B, 1) or a float -> (B, 2)."""
    _check_pair(x0, x1, t)
    return (1 - t) * x0 + t * x1


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
    u_t = conditional_velocity(x0, x1)
    if t is None:
        t = torch.rand(x0.shape[0], 1, generator=make_generator(generator=generator)).to(x0.device)
    return PathSample(x0, x1, t, interpolate(x0, x1, t), u_t)


def flow_matching_loss(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
                       condition: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between v_theta(x_t, t[, c]) and the per-pair target x1 - x0."""
    check_model(model)
    x_t = interpolate(x0, x1, t)
    prediction = model(x_t, t) if condition is None else model(x_t, t, condition)
    return nn.functional.mse_loss(prediction, conditional_velocity(x0, x1))
