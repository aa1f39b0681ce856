"""Argument checks for the public functions, each run once at the boundary.

Each check raises a ``TypeError`` or ``ValueError`` that names the argument, the value it
received and what is allowed, so a student sees the mistake instead of a deep traceback.
"""
from __future__ import annotations

import numbers
import os
import sys

import numpy as np
import torch
from torch import nn

# Upper bounds that refuse absurd sizes before anything is allocated. They sit far above what
# the notebooks use; a typo such as n_samples=10**12 fails at once with a readable message.
MAX_SAMPLES = 10_000_000       # points drawn or batched in one call
MAX_SEED = 2**64 - 1           # the largest seed torch accepts
MAX_WIDTH = 4096               # embedding sizes and one-hot classes
MAX_PAIRWISE = 100_000_000     # entries of a pairwise (N x M) distance matrix
MAX_ODE_STEPS = 1_000_000      # steps of one ODE solve
MAX_TRAIN_STEPS = 10_000_000   # optimisation steps of one training run
MAX_POINT_STEPS = 1_000_000_000  # points times steps of one ODE solve or sampling chain: an hour or more


def _short(value) -> str:
    """A short, readable description of a value for an error message."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"{'tensor' if isinstance(value, torch.Tensor) else 'array'} of shape {tuple(value.shape)} " \
               f"and dtype {value.dtype}"
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
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_name(name: str, value) -> str:
    """Return ``value`` if it is a non-empty string (a registry key)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {_short(value)}")
    return value


def check_entry(name: str, entry, kind: type):
    """Return ``entry`` if it is a ``kind`` (a registry's entry class) with a non-empty ``name``."""
    if not isinstance(entry, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, got {_short(entry)}")
    check_name(f"{name}.name", entry.name)
    return entry


def check_flag(name: str, value, allow_none: bool = False) -> bool | None:
    """Return ``value`` if it is True or False (or None, where allowed)."""
    if not (isinstance(value, (bool, np.bool_)) or (allow_none and value is None)):
        raise TypeError(f"{name} must be True{', False or None' if allow_none else ' or False'}, got {_short(value)}")
    return None if value is None else bool(value)


def check_callable(name: str, value, usage: str):
    """Return ``value`` if it can be called (``usage`` shows how, e.g. 'velocity(x, t)')."""
    if not callable(value):
        raise TypeError(f"{name} must be callable as {usage}, got {_short(value)}")
    return value


def as_list(name: str, value, what: str = "values") -> list:
    """A list, tuple, range or 1-D array of ``what`` as a list (its entries are checked by the caller)."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 1:
        return value.tolist()
    if not isinstance(value, (list, tuple, range)):
        raise TypeError(f"{name} must be a list or tuple of {what}, got {_short(value)}")
    return list(value)


def check_point_steps(n_steps: int, n_points: int, points: str) -> None:
    """Refuse an ODE solve or sampling chain of more than ``MAX_POINT_STEPS`` point-steps.

    ``points`` says where the points come from, e.g. 'n_samples=5000' or 'x0 of 100 points'.
    """
    if n_steps * n_points > MAX_POINT_STEPS:
        raise ValueError(f"n_steps={n_steps} for {points} is {n_steps * n_points:,} point-steps, more than "
                         f"{MAX_POINT_STEPS:,} (an hour or more of work); use fewer steps or fewer points")


def check_choice(name: str, value, allowed) -> str:
    """Return ``value`` if it is one of ``allowed`` (a sequence of strings)."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {_short(value)}")
    return value


def check_device(name: str, value) -> torch.device | None:
    """Return ``value`` as a ``torch.device`` this machine has (None stays None; 'meta' is refused)."""
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


def describe_model(model) -> str:
    """What a model is, in words for a message: 'VelocityField (unconditional velocity)'."""
    kind = getattr(model, "condition_kind", None)
    what = {None: "unconditional", "onehot": f"one-hot with {getattr(model, 'condition_dim', '?')} classes",
            "radius": "radius-conditioned"}.get(kind, str(kind))
    return f"{type(model).__name__} ({what} {getattr(model, 'predicts', 'velocity')})"


def check_module(name: str, model) -> nn.Module:
    """``model`` must be an nn.Module whose weights hold values (not on the 'meta' device)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {_short(model)}")
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ValueError(f"{name} {type(model).__name__} has its weights on the 'meta' device (no values); "
                         f"load or initialise it on 'cpu' or 'cuda'")
    return model


def check_model(model, name: str = "model", dim: int | None = None, kinds=None, predicts: str | None = "velocity",
                points: str = "the points"):
    """``model`` must be a velocity field callable as model(x, t[, condition]).

    Each model class says what it is (``predicts``, ``dim``, ``condition_kind``); a callable that
    does not say is taken at its word. dim: the width of the points it will get (``points`` names
    them in a message, e.g. 'x0'). kinds: the ``condition_kind`` values allowed (None: any; e.g.
    ('onehot',) for guidance). predicts: what it must predict (None: anything, e.g. a trainer of
    noise predictors).
    """
    if not callable(model):
        raise TypeError(f"{name} must be callable as {name}(x, t[, condition]), got {_short(model)}")
    if isinstance(model, nn.Module):
        check_module(name, model)
    if predicts is not None and getattr(model, "predicts", "velocity") != predicts:
        raise TypeError(f"{name} must predict a {predicts}, got {describe_model(model)}; a diffusion model's "
                        f"noise prediction becomes a velocity through diffusion.NoiseAsVelocity({name})")
    width = getattr(model, "dim", None)
    if dim is not None and width is not None and width != dim:
        raise ValueError(f"{points} has width {dim}, but {name} {type(model).__name__} takes points of width {width}")
    if kinds is not None and getattr(model, "condition_kind", None) not in kinds:
        words = {None: "unconditional", "onehot": "one-hot", "radius": "radius-conditioned"}
        allowed = " or ".join(words.get(kind, str(kind)) for kind in kinds)
        article = "an" if allowed.startswith("unconditional") else "a"
        raise TypeError(f"{name} must be {article} {allowed} model, got {describe_model(model)}")
    return model


def caller_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that points at the first caller outside this package
    (and outside torch, whose ``no_grad`` decorator wraps some of the package's functions)."""
    inside = tuple(os.path.dirname(os.path.abspath(path)) + os.sep for path in (__file__, torch.__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def make_generator(seed=None, generator: torch.Generator | None = None) -> torch.Generator | None:
    """A private ``torch.Generator`` from a seed, the given generator, or None (global RNG)."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {_short(generator)}")
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        return generator
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED))


def as_real_tensor(name: str, value, allow_bool: bool = False) -> torch.Tensor:
    """``value`` (tensor or array-like) as a tensor of real numbers with values (not 'meta').

    A tensor is returned as it is; anything else goes through NumPy. TypeError otherwise.
    """
    if not isinstance(value, torch.Tensor):
        try:
            array = np.asarray(value)
        except Exception as error:  # ragged lists and the like
            raise TypeError(f"{name} must be a real-valued array or tensor, got {_short(value)}") from error
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"{name} must be a real-valued array or tensor, got {_short(value)}")
        # np.ascontiguousarray would turn a 0-d array into shape (1,): copy only when needed.
        value = torch.from_numpy(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    if value.is_complex() or (value.dtype == torch.bool and not allow_bool):
        raise TypeError(f"{name} must hold real numbers, got {_short(value)}")
    if value.device.type == "meta":
        raise ValueError(f"{name} is a 'meta' tensor, which holds no values; pass a tensor on 'cpu' or 'cuda'")
    return value


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Refuse NaN and inf values (checked after the conversion to the working dtype)."""
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must not contain NaN or inf values (or values too large for float32)")
    return tensor


def as_points(name: str, points, dim: int = 2, allow_empty: bool = False) -> torch.Tensor:
    """``points`` (tensor or array-like, N x dim) as a finite float32 tensor; a tensor keeps its device."""
    tensor = as_real_tensor(name, points)
    if tensor.dim() != 2 or tensor.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one point, got shape {tuple(tensor.shape)}")
    return check_finite(name, tensor.float())


def as_labels(name: str, labels, n_points: int | None, n_classes: int) -> torch.Tensor:
    """Class labels as an int64 tensor (n_points,) (any length if None), whole numbers in [0, n_classes)."""
    tensor = as_real_tensor(name, labels)
    if tensor.is_floating_point() and not (torch.isfinite(tensor).all() and torch.equal(tensor, tensor.round())):
        raise TypeError(f"{name} must hold whole-number class indices, got {_short(labels)}")
    if tensor.dim() != 1 or tensor.shape[0] != (n_points if n_points is not None else tensor.shape[0]):
        raise ValueError(f"{name} must have shape ({'N' if n_points is None else n_points},)"
                         f"{'' if n_points is None else ' to match the data'}, got shape {tuple(tensor.shape)}")
    tensor = tensor.long()
    if len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}] for n_classes={n_classes}, "
                         f"got values from {int(tensor.min())} to {int(tensor.max())}")
    return tensor


def as_conditions(name: str, value, n_rows: int, width: int | None = None) -> torch.Tensor:
    """Conditions as a finite float32 tensor (n_rows, C); a (n_rows,) vector becomes (n_rows, 1)."""
    tensor = as_real_tensor(name, value, allow_bool=True)
    if tensor.dim() == 1:
        tensor = tensor[:, None]
    if tensor.dim() != 2 or tensor.shape[0] != n_rows or (width is not None and tensor.shape[1] != width):
        raise ValueError(f"{name} must have shape ({n_rows}, {'C' if width is None else width}), one row per "
                         f"point, got shape {tuple(tensor.shape)}")
    return check_finite(name, tensor.float())


def as_trajectory(name: str, value, dim: int | None = None, min_frames: int = 1) -> torch.Tensor:
    """A finite trajectory as a float64 CPU tensor (S + 1, B, D) with at least one particle."""
    tensor = as_real_tensor(name, value.detach() if isinstance(value, torch.Tensor) else value)
    if tensor.dim() != 3 or (dim is not None and tensor.shape[2] != dim) or tensor.shape[2] == 0:
        raise ValueError(f"{name} must have shape (S + 1, B, {'D' if dim is None else dim}), "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_frames or tensor.shape[1] == 0:
        raise ValueError(f"{name} must hold at least {min_frames} time points and one particle, "
                         f"got shape {tuple(tensor.shape)}")
    return check_finite(name, tensor.cpu().double())
