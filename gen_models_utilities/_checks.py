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


def _tensor_from(name: str, value, expected: str) -> torch.Tensor:
    """``value`` itself if it is a tensor, else the numeric (or bool) NumPy array it makes, as a
    tensor of the same shape; TypeError ("{name} must be {expected}") for anything else."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name} must be {expected}, got {_short(value)}") from error
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{name} must be {expected}, got {_short(value)}")
    # np.ascontiguousarray would turn a 0-d array into shape (1,): copy only when needed.
    return torch.from_numpy(array if array.flags.c_contiguous else np.ascontiguousarray(array))


def as_points(name: str, points, dim: int = 2, allow_empty: bool = False) -> torch.Tensor:
    """Return ``points`` as a float32 tensor of shape (N, dim), refusing NaN and inf.

    Accepts a torch tensor or anything NumPy turns into a real array. A tensor keeps its device.
    """
    tensor = _tensor_from(name, points, f"a real-valued array of shape (N, {dim})")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got {_short(tensor)}")
    check_has_values(name, tensor)
    if tensor.dim() != 2 or tensor.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one point, got shape {tuple(tensor.shape)}")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must not contain NaN or inf values")
    tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} holds values too large for float32 (|x| > 3.4e38)")
    return tensor


def as_labels(name: str, labels, n_points: int, n_classes: int) -> torch.Tensor:
    """Return integer class labels as an int64 tensor of shape (N,), each in [0, n_classes)."""
    tensor = as_real_tensor(name, labels, allow_bool=True)
    if tensor.is_floating_point():
        if not (torch.isfinite(tensor).all() and torch.equal(tensor, tensor.round())):
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
    seed = check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED)
    return torch.Generator().manual_seed(seed)


# Upper bounds that refuse absurd sizes before anything is allocated. They sit far above what
# the notebooks use; a typo such as n_samples=10**12 fails at once with a readable message.
MAX_SAMPLES = 10_000_000       # points drawn or batched in one call
MAX_SEED = 2**64 - 1           # the largest seed torch accepts
MAX_WIDTH = 4096               # network widths, embedding sizes and one-hot classes
MAX_PAIRWISE = 100_000_000     # entries of a pairwise (N x M) distance matrix
MAX_ODE_STEPS = 1_000_000      # steps of one ODE solve
MAX_TRAIN_STEPS = 10_000_000   # optimisation steps of one training run


def check_device(name: str, value) -> torch.device | None:
    """Return ``value`` as a usable ``torch.device`` (None stays None).

    Refuses the 'meta' device (tensors without values) and devices this machine lacks.
    """
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a device name such as 'cpu' or a torch.device, got {_short(value)}")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} must be a device such as 'cpu' or 'cuda', got {value!r}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"{name} must be a device available here ('cpu'"
                         f"{', cuda' if available['cuda'] else ''}), got {str(device)!r}")
    return device


def check_has_values(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Refuse tensors on the 'meta' device: they have a shape but no values."""
    if tensor.device.type == "meta":
        raise ValueError(f"{name} is a 'meta' tensor, which holds no values; pass a tensor on "
                         f"'cpu' or 'cuda'")
    return tensor


def as_real_tensor(name: str, value, allow_bool: bool = False) -> torch.Tensor:
    """``value`` (tensor or array-like) as a tensor of real numbers; TypeError for anything else."""
    tensor = _tensor_from(name, value, "a real-valued array or tensor")
    if tensor.is_complex() or (tensor.dtype == torch.bool and not allow_bool):
        raise TypeError(f"{name} must hold real numbers, got {_short(tensor)}")
    return check_has_values(name, tensor)


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Refuse NaN and inf values (after the conversion to the working dtype)."""
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must not contain NaN or inf values (or values too large for float32)")
    return tensor


def as_conditions(name: str, value, n_rows: int, width: int | None = None) -> torch.Tensor:
    """Conditions as a finite float32 tensor (n_rows, C); a (n_rows,) vector becomes (n_rows, 1)."""
    tensor = as_real_tensor(name, value, allow_bool=True)
    if tensor.dim() == 1:
        tensor = tensor[:, None]
    if tensor.dim() != 2 or tensor.shape[0] != n_rows or (width is not None and tensor.shape[1] != width):
        wide = "C" if width is None else str(width)
        raise ValueError(f"{name} must have shape ({n_rows}, {wide}), one row per point, "
                         f"got shape {tuple(tensor.shape)}")
    return check_finite(name, tensor.float())


def as_trajectory(name: str, value, dim: int | None = None, min_frames: int = 1) -> torch.Tensor:
    """A finite trajectory as a float64 CPU tensor (S + 1, B, D) with at least one particle."""
    tensor = as_real_tensor(name, value.detach() if isinstance(value, torch.Tensor) else value)
    wide = "D" if dim is None else str(dim)
    if tensor.dim() != 3 or (dim is not None and tensor.shape[2] != dim) or tensor.shape[2] == 0:
        raise ValueError(f"{name} must have shape (S + 1, B, {wide}), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_frames or tensor.shape[1] == 0:
        raise ValueError(f"{name} must hold at least {min_frames} time points and one particle, "
                         f"got shape {tuple(tensor.shape)}")
    return check_finite(name, tensor.detach().cpu().double())
