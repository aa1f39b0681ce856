"""Saving and loading models safely. Knows only the model classes (``models.MODEL_CLASSES``).

A checkpoint is a plain dictionary of tensors, numbers and strings:
    {"format_version", "model_class", "model_config", "state_dict", "metadata"}
It is written atomically (``files.atomic_write``), so an interrupted save never leaves a broken
file where a good one was, and read with ``torch.load(weights_only=True)``, which refuses to
unpickle code. The shipped checkpoints are listed in ``pretrained.catalogue``.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from .._checks import _short, check_device
from .._version import __version__
from ..files import atomic_write
from ..models import MODEL_CLASSES

FORMAT_VERSION = 1
PLAIN = (str, int, float, bool, type(None))


def _check_plain(name: str, value) -> None:
    """Refuse metadata that ``torch.load(weights_only=True)`` would not read back (numpy numbers,
    tensors, objects): plain values, and lists, tuples and str-keyed dicts of them."""
    if type(value) in PLAIN:
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(f"{name}[{i}]", item)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{name} must have str keys, got the key {_short(key)}")
            _check_plain(f"{name}[{key!r}]", item)
        return
    raise TypeError(f"{name} must be a plain value (str, int, float, bool, None, or a list or dict "
                    f"of them), got {type(value).__name__} {_short(value)}")


def _unpickler_reason(error: Exception) -> str:
    """The safe unpickler's own reason ('Unsupported operand 110', 'Unsupported global: ...') in torch's message."""
    text = str(error).split("WeightsUnpickler error:")[-1]
    return next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: unsafe, corrupt, or not what was expected."""


def save_checkpoint(model: nn.Module, path, **metadata) -> Path:
    """Write ``model``'s weights, class, constructor arguments and ``metadata`` to ``path`` atomically.

    ``metadata`` holds plain values only (str, int, float, bool, lists and dicts of them):
    for example base, recipe, steps and quality figures. The package version is added.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {_short(model)}")
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {name}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name ending in .pt, got {_short(path)}")
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"path must end in .pt, got {str(path)!r}")
    for key, value in metadata.items():      # what load_checkpoint can read back: plain data only
        _check_plain(f"metadata {key}", value)
    _check_plain("model.config", dict(getattr(model, "config", {})))
    payload = {
        "format_version": FORMAT_VERSION,
        "model_class": name,
        "model_config": dict(getattr(model, "config", {})),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": {**metadata, "package_version": __version__},
    }
    atomic_write(path, lambda file: torch.save(payload, file))
    return path


def load_checkpoint(path, expected_class: str | type | None = None, map_location="cpu"):
    """Read a checkpoint written by ``save_checkpoint``; returns (model in eval mode, metadata dict).

    Refuses, with a CheckpointError (a ValueError) saying what it found: files that would run
    code when unpickled, other format versions, unknown or unexpected model classes, and
    weights that do not fit the architecture.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name, got {_short(path)}")
    if not (expected_class is None or isinstance(expected_class, str)
            or (isinstance(expected_class, type) and issubclass(expected_class, nn.Module))):
        raise TypeError(f"expected_class must be a model class or its name, one of {sorted(MODEL_CLASSES)}, "
                        f"got {_short(expected_class)}")
    if isinstance(map_location, (str, torch.device)):          # a dict or a function is torch's to check
        check_device("map_location", map_location)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():                 # no code named, but not torch's plain data either
            raise CheckpointError(f"{path.name} is not a plain-data checkpoint and was refused: "
                                  f"{_unpickler_reason(error)}") from None
        raise CheckpointError(f"{path.name} is not a plain-data checkpoint and was refused "
                              f"(loading it would need to run code): {_unpickler_reason(error)}") from None
    except Exception as error:  # truncated or not a torch file at all
        raise CheckpointError(f"{path.name} is not a readable checkpoint: {type(error).__name__}: {error}") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path.name} holds {type(payload).__name__}, not a checkpoint of this package")
    version = payload["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
        raise CheckpointError(f"{path.name} has format version {version}; this package reads version "
                              f"{FORMAT_VERSION} (update the package or re-save the model)")
    missing = [key for key in ("model_class", "model_config", "state_dict", "metadata") if key not in payload]
    if missing:
        raise CheckpointError(f"{path.name} lacks the entries {missing}; expected a checkpoint written by "
                              f"save_checkpoint")
    name = payload["model_class"]
    if not isinstance(name, str):
        raise CheckpointError(f"{path.name} names its model class with {type(name).__name__}, expected a string")
    if not isinstance(payload["model_config"], dict) or not isinstance(payload["metadata"], dict):
        raise CheckpointError(f"{path.name} holds a model_config or metadata that is not a dict")
    if expected_class is not None:
        expected = expected_class if isinstance(expected_class, str) else expected_class.__name__
        if name != expected:
            raise CheckpointError(f"{path.name} holds a {name}, expected a {expected}")
    if name not in MODEL_CLASSES:
        raise CheckpointError(f"{path.name} holds a {name!r}; known model classes: {sorted(MODEL_CLASSES)}")
    try:
        model = MODEL_CLASSES[name].cls(**payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise CheckpointError(f"{path.name}: weights do not fit {name}({payload['model_config']}): "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval(), payload["metadata"]
