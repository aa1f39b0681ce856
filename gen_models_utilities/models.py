"""Velocity networks v_theta(x, t[, condition]) of the chapter.

All three share one interface, ``model(x, t, condition=None)``, with
x: (B, 2), t: (B, 1) (a float or (B,) also works), condition: (B, condition_dim) or None,
returning the velocity (B, 2). ``condition_dim`` says how wide the condition is (0: none).
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import MAX_WIDTH, _short, as_real_tensor, check_has_values, check_positive_int, check_real


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them.

    The ReLUs work in place: a Linear layer's output is needed by nothing but its ReLU, so each
    layer allocates one (B, width) tensor, not two.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def time_column(t, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Time as a (B, 1) tensor on x's device and dtype, from a float, (B,), (1, 1) or (B, 1)."""
    if not isinstance(t, torch.Tensor):
        largest = torch.finfo(like.dtype).max                  # beyond it torch.full overflows
        return torch.full((batch, 1), check_real("t", t, low=-largest, high=largest), device=like.device,
                          dtype=like.dtype)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must hold real times, got {_short(t)}")
    check_has_values("t", t)
    if t.dim() <= 1 and t.numel() == batch and batch != 1:
        t = t.reshape(batch, 1)
    elif t.numel() == 1:
        t = t.reshape(1, 1).expand(batch, 1)
    if t.shape != (batch, 1):
        raise ValueError(f"t must be a float or have shape ({batch}, 1), got shape {tuple(t.shape)}")
    return t.to(device=like.device, dtype=like.dtype)


class VelocityModel(nn.Module):
    """Base class: a time MLP embedding plus an MLP trunk on [x, t_emb, condition embedding]."""

    condition_dim = 0
    condition_kind: str | None = None

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128, n_hidden: int = 4, cond_width: int = 0):
        super().__init__()
        time_emb_dim = check_positive_int("time_emb_dim", time_emb_dim, maximum=MAX_WIDTH)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim, maximum=MAX_WIDTH)
        n_hidden = check_positive_int("n_hidden", n_hidden, maximum=64)
        self.config = {"time_emb_dim": time_emb_dim, "hidden_dim": hidden_dim}
        # A small MLP embeds the continuous time (an nn.Embedding needs integer steps).
        self.time_mlp = mlp([1, time_emb_dim, time_emb_dim, time_emb_dim])
        self.net = mlp([2 + time_emb_dim + cond_width] + [hidden_dim] * n_hidden + [2])

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition (B, condition_dim) -> features fed to the trunk."""
        return condition

    def forward(self, x: torch.Tensor, t, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity at x: (B, 2) and time t: (B, 1), optionally given condition (B, condition_dim).

        Real inputs of another dtype (float64, integers) are cast to the weights' dtype.
        """
        x = self._check_x(x)
        t = time_column(t, x.shape[0], x)
        features = [x, self.time_mlp(t)]
        if self.condition_dim:
            features.append(self.embed_condition(self._check_condition(condition, x)))
        elif condition is not None:
            raise ValueError(f"{type(self).__name__} takes no condition, got condition={_short(condition)}")
        return self.net(torch.cat(features, dim=-1))

    def _check_x(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (B, 2), got {_short(x)}")
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"x must hold real numbers, got {_short(x)}")
        check_has_values("x", x)
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (B, 2), got shape {tuple(x.shape)}")
        weight = self.net[0].weight
        if x.device != weight.device:
            raise ValueError(f"x is on {x.device} but {type(self).__name__} is on {weight.device}; "
                             f"move one of them with .to(device)")
        return x if x.dtype == weight.dtype else x.to(weight.dtype)

    def _check_condition(self, condition, x: torch.Tensor) -> torch.Tensor:
        if condition is None:
            raise ValueError(f"{type(self).__name__} needs a condition of shape (B, {self.condition_dim})")
        if not isinstance(condition, torch.Tensor):
            raise TypeError(f"condition must be a torch.Tensor of shape (B, {self.condition_dim}), "
                            f"got {_short(condition)}")
        condition = as_real_tensor("condition", condition, allow_bool=True)
        if condition.dim() == 1 and condition.shape[0] == self.condition_dim:
            condition = condition[None]
        if condition.dim() != 2 or condition.shape[1] != self.condition_dim:
            raise ValueError(f"condition must have shape (B, {self.condition_dim}) for "
                             f"{type(self).__name__}, got shape {tuple(condition.shape)}")
        if condition.shape[0] == 1 and x.shape[0] != 1:
            condition = condition.expand(x.shape[0], -1)
        elif condition.shape[0] != x.shape[0]:
            raise ValueError(f"condition has {condition.shape[0]} rows but x has {x.shape[0]}")
        return condition.to(device=x.device, dtype=x.dtype)


class VelocityField(VelocityModel):
    """Unconditional velocity field v(x, t): the model of sections 17.4 and 17.5."""

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128):
        super().__init__(time_emb_dim, hidden_dim)


class ConditionalVelocityField(VelocityModel):
    """Velocity field v(x, t, c) conditioned on a one-hot class code c: (B, n_classes).

    An all-zero code is the "no class" input used by classifier-free guidance.
    """

    condition_kind = "onehot"

    def __init__(self, n_classes: int = 8, time_emb_dim: int = 16, hidden_dim: int = 128):
        n_classes = check_positive_int("n_classes", n_classes, maximum=MAX_WIDTH)
        super().__init__(time_emb_dim, hidden_dim, cond_width=n_classes)
        self.condition_dim = n_classes
        self.config["n_classes"] = n_classes


class ConditionalVelocityFieldRadius(VelocityModel):
    """Velocity field v(x, t, r) conditioned on a radius r: (B, 1), embedded by its own MLP.

    ``trained_radius_range`` (a buffer, saved with the weights) holds the smallest and largest
    radius seen in training, so that samplers can flag requests outside it as extrapolation.
    """

    condition_kind = "radius"
    condition_dim = 1

    def __init__(self, time_emb_dim: int = 16, radius_emb_dim: int = 16, hidden_dim: int = 128):
        radius_emb_dim = check_positive_int("radius_emb_dim", radius_emb_dim, maximum=MAX_WIDTH)
        super().__init__(time_emb_dim, hidden_dim, cond_width=radius_emb_dim)
        self.config["radius_emb_dim"] = radius_emb_dim
        self.radius_mlp = mlp([1, radius_emb_dim, radius_emb_dim, radius_emb_dim])
        self.register_buffer("trained_radius_range", torch.tensor([float("nan"), float("nan")]))

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        return self.radius_mlp(condition)

    def is_extrapolation(self, radius: float) -> bool:
        """True when ``radius`` lies outside the radii seen in training (False if unknown)."""
        radius = check_real("radius", radius)
        low, high = self.trained_radius_range.tolist()
        return bool(low == low and not (low <= radius <= high))
