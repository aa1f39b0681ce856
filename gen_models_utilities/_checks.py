"""Argument checks shared by the public functions.

Each check raises a ``TypeError`` or ``ValueError`` that names the argument, the value it
received and what is allowed, so a student sees the mistake instead of a deep traceback.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch


def _short(value) -> str:
    """A short, readable description of a value for an error message."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_positive_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int if it is a whole number in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_short(value)}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value}")
    return value


def check_real(name: str, value, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
    """Return ``value`` as a finite float in the given range (``low_open``: exclude low)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        sign = ">" if low_open else ">="
        raise ValueError(f"{name} must be {sign} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_choice(name: str, value, allowed) -> str:
    """Return ``value`` if it is one of ``allowed`` (a sequence of strings)."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {_short(value)}")
    return value


def as_points(name: str, points, dim: int = 2, allow_empty: bool = False) -> torch.Tensor:
    """Return ``points`` as a float32 tensor of shape (N, dim), refusing NaN and inf.

    Accepts a torch tensor or anything NumPy turns into a real array. A tensor keeps its device.
    """
    if isinstance(points, torch.Tensor):
        tensor = points
    else:
        try:
            array = np.asarray(points)
        except Exception as error:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of shape (N, {dim}), got {_short(points)}") from error
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"{name} must be a real-valued array of shape (N, {dim}), got {_short(points)}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got {_short(tensor)}")
    if tensor.dim() != 2 or tensor.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one point, got shape {tuple(tensor.shape)}")
    tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must not contain NaN or inf values")
    return tensor


def as_labels(name: str, labels, n_points: int, n_classes: int) -> torch.Tensor:
    """Return integer class labels as an int64 tensor of shape (N,), each in [0, n_classes)."""
    tensor = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if tensor.is_floating_point():
        if not torch.equal(tensor, tensor.round()):
            raise TypeError(f"{name} must hold whole-number class indices, got {_short(labels)}")
    elif tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must hold integer class indices, got {_short(labels)}")
    if tensor.dim() != 1 or tensor.shape[0] != n_points:
        raise ValueError(f"{name} must have shape ({n_points},) to match the data, got shape {tuple(tensor.shape)}")
    tensor = tensor.long()
    if n_points and (int(tensor.min()) < 0 or int(tensor.max()) >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes - 1}] for n_classes={n_classes}, "
            f"got values from {int(tensor.min())} to {int(tensor.max())}")
    return tensor


def make_generator(seed=None, generator: torch.Generator | None = None) -> torch.Generator | None:
    """A private ``torch.Generator`` from a seed, the given generator, or None (global RNG)."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {_short(generator)}")
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        return generator
    if seed is None:
        return None
    if isinstance(seed, torch.Generator):
        return seed
    seed = check_positive_int("seed", seed, minimum=0)
    return torch.Generator().manual_seed(seed)
