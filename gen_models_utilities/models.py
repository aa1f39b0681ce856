"""Velocity networks v_theta(x, t[, condition]) of the chapter, and the table of model classes.

All three share one interface, ``model(x, t, condition=None)``: x (B, 2), t (B, 1) or a float,
condition (B, condition_dim) or None -> velocity (B, 2). Each class says what it is:
``condition_kind`` (None, 'onehot' or 'radius'), ``condition_dim`` (the condition's width, 0:
none), ``dim`` (the points' width) and ``predicts`` ('velocity'; 17b's diffusion model predicts
'noise'). Inputs are not checked here: ``train``, ``solve_ode`` and ``generate`` check what a
student passes them, and a direct call with a wrong shape fails inside torch.

``MODEL_CLASSES`` lists the classes a checkpoint can name; each registers itself where it is
defined (``@register_model_class``), so loading a checkpoint needs no other import first.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import MAX_WIDTH, _short, as_labels, check_choice, check_positive_int, check_real


class ExtrapolationWarning(UserWarning):
    """A conditional model was asked for conditions outside the range it was trained on."""


@dataclass(frozen=True)
class ModelClass:
    """One entry of ``MODEL_CLASSES``: a class rebuilt from its ``config`` dict by checkpoints."""

    name: str
    cls: type


MODEL_CLASSES: dict[str, ModelClass] = {}


def register_model_class(cls: type) -> type:
    """Add the nn.Module class ``cls`` (built as ``cls(**model.config)``) to ``MODEL_CLASSES``; a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"cls must be a torch.nn.Module class, got {_short(cls)}")
    MODEL_CLASSES[cls.__name__] = ModelClass(cls.__name__, cls)
    return cls


def call_model(model, x: torch.Tensor, t, condition: torch.Tensor | None = None) -> torch.Tensor:
    """model(x, t), or model(x, t, condition) when a condition is given: the one way to call a field."""
    return model(x, t) if condition is None else model(x, t, condition)


def class_code(labels, n_classes: int) -> torch.Tensor:
    """One-hot codes of class indices: an int -> float32 (n_classes,); (N,) ints -> (N, n_classes).

    The all-zero code is the "no class" input of classifier-free guidance.
    """
    n_classes = check_positive_int("n_classes", n_classes, maximum=MAX_WIDTH)
    if isinstance(labels, numbers.Integral) and not isinstance(labels, bool):
        labels = torch.tensor(check_positive_int("labels", labels, minimum=0, maximum=n_classes - 1))
    else:
        labels = as_labels("labels", labels, None, n_classes)
    return nn.functional.one_hot(labels, n_classes).float()


# Activations a model can be built with, by name (a name, not a class, so checkpoints stay plain data).
ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "softplus": nn.Softplus, "tanh": nn.Tanh}


def mlp(sizes: list[int], final_activation: bool = False, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given widths with an activation (ReLU by default) between them.

    mlp([1, 16, 16]) is Linear(1, 16), ReLU, Linear(16, 16).
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class VelocityModel(nn.Module):
    """Base class: a time MLP embedding plus an MLP trunk on [x, t_emb, condition embedding]."""

    condition_dim = 0
    condition_kind: str | None = None
    dim = 2
    predicts = "velocity"

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128, n_hidden: int = 4, cond_width: int = 0,
                 activation: str = "relu"):
        super().__init__()
        time_emb_dim = check_positive_int("time_emb_dim", time_emb_dim, maximum=MAX_WIDTH)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim, maximum=MAX_WIDTH)
        act = ACTIVATIONS[check_choice("activation", activation, tuple(ACTIVATIONS))]
        self.config = {"time_emb_dim": time_emb_dim, "hidden_dim": hidden_dim}
        if activation != "relu":                  # a smooth one ('silu', ...), kept for checkpoints
            self.config["activation"] = activation
        # A small MLP embeds the continuous time (an nn.Embedding needs integer steps).
        self.time_mlp = mlp([1, time_emb_dim, time_emb_dim, time_emb_dim], activation=act)
        self.net = mlp([2 + time_emb_dim + cond_width] + [hidden_dim] * n_hidden + [2], activation=act)

    def embed_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition (B, condition_dim) -> features fed to the trunk."""
        return condition

    def forward(self, x: torch.Tensor, t, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity at points x: (B, 2) and times t: (B, 1) -> (B, 2).

        A float t is the same time for every point; condition: (B, condition_dim), or one row
        (1, condition_dim) shared by every point.
        """
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(len(x), 1)
        features = [x, self.time_mlp(t)]
        if condition is not None:
            features.append(self.embed_condition(condition.expand(len(x), -1)))
        return self.net(torch.cat(features, dim=1))


@register_model_class
class VelocityField(VelocityModel):
    """Unconditional velocity field v(x, t): the model of sections 17.4 and 17.5."""

    def __init__(self, time_emb_dim: int = 16, hidden_dim: int = 128, activation: str = "relu"):
        super().__init__(time_emb_dim, hidden_dim, activation=activation)


@register_model_class
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


@register_model_class
class ConditionalVelocityFieldRadius(VelocityModel):
    """Velocity field v(x, t, r) conditioned on a radius r: (B, 1), embedded by its own MLP.

    ``trained_radius_range`` (a buffer, saved with the weights) holds the radii seen often in
    training, the 1st and 99th percentiles of the training radii, so that samplers can flag
    requests outside it as extrapolation (the rarest 1% at each end count as outside).
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
