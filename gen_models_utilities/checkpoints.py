"""Saving and loading models safely, and the one place that loads the shipped checkpoints.

A checkpoint is a plain dictionary of tensors, numbers and strings:
    {"format_version", "model_class", "model_config", "state_dict", "metadata"}
It is written atomically (a temporary file in the same folder, then a rename), so an
interrupted save never leaves a broken file where a good one was, and read with
``torch.load(weights_only=True)``, which refuses to unpickle code.

The shipped models live in ``pretrained/{kind}_{base}.pt``, one per model kind of
``recipes.MODEL_KINDS`` and base of ``BASES``, and one per companion of ``recipes.COMPANIONS``
on its base: ``load_pretrained("fm", "uniform")``, ``load_pretrained("fm_reflow", "gaussian")`` or,
for widgets, ``PretrainedModels("fm")``. ``python -m tools.retrain_checkpoints`` rebuilds them.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .models import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField

FORMAT_VERSION = 1
MODEL_CLASSES = {cls.__name__: cls for cls in (VelocityField, ConditionalVelocityField, ConditionalVelocityFieldRadius)}
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: unsafe, corrupt, or not what was expected."""


def register_model_class(cls: type) -> type:
    """Allow checkpoints of another nn.Module class (constructed from its ``config`` dict)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def save_checkpoint(model: nn.Module, path, **metadata) -> Path:
    """Write ``model``'s weights, class, constructor arguments and ``metadata`` to ``path`` atomically.

    ``metadata`` holds plain values only (str, int, float, bool, lists and dicts of them):
    for example base, recipe, steps and quality figures. The package version is added.
    """
    from . import __version__

    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {name}")
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"path must end in .pt, got {str(path)!r}")
    payload = {
        "format_version": FORMAT_VERSION,
        "model_class": name,
        "model_config": dict(getattr(model, "config", {})),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": {**metadata, "package_version": __version__},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)              # mkstemp makes it private; a checkpoint is shareable
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, expected_class: str | type | None = None, map_location="cpu"):
    """Read a checkpoint written by ``save_checkpoint``; returns (model in eval mode, metadata dict).

    Refuses, with a CheckpointError (a ValueError) saying what it found: files that would run
    code when unpickled, other format versions, unknown or unexpected model classes, and
    weights that do not fit the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path.name} is not a plain-data checkpoint and was refused "
                              f"(loading it would need to run code): {str(error).splitlines()[0]}") from None
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
    from . import diffusion  # noqa: F401  (registers DiffusionModel, which lives beside its trainer)

    if name not in MODEL_CLASSES:
        raise CheckpointError(f"{path.name} holds a {name!r}; known model classes: {sorted(MODEL_CLASSES)}")
    try:
        model = MODEL_CLASSES[name](**payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise CheckpointError(f"{path.name}: weights do not fit {name}({payload['model_config']}): "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval(), payload["metadata"]


def pretrained_path(kind: str, base: str = "gaussian") -> Path:
    """Where the shipped checkpoint of ``kind`` ('fm', 'onehot', 'radius', or a companion of
    ``recipes.COMPANIONS`` such as 'fm_reflow') trained from ``base`` lives."""
    from .recipes import check_kind_and_base

    kind, base = check_kind_and_base(kind, base)
    return PRETRAINED_DIR / f"{kind}_{base}.pt"


def load_pretrained(kind: str, base: str = "gaussian", map_location="cpu"):
    """The shipped, well-trained model of ``kind`` trained from ``base``: (model, metadata)."""
    path = pretrained_path(kind, base)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {path.name}; run `make checkpoints` to train it")
    return load_checkpoint(path, map_location=map_location)


class PretrainedModels(Mapping):
    """The shipped models of one kind as a read-only dict {base name: model}, for the widgets.

    Holds the bases of ``BASES`` that have a checkpoint (read when iterated, so a base
    registered later appears once its checkpoint exists); each model loads on first use.
    """

    def __init__(self, kind: str):
        from .recipes import MODEL_KINDS
        from ._checks import check_choice

        self.kind = check_choice("kind", kind, tuple(MODEL_KINDS))
        self._loaded: dict = {}

    def __getitem__(self, base: str) -> nn.Module:
        if base not in self:
            raise KeyError(base)
        if base not in self._loaded:
            self._loaded[base] = load_pretrained(self.kind, base)[0]
        return self._loaded[base]

    def bases(self) -> list[str]:
        """The bases of ``BASES``, in registry order, that have a checkpoint of this kind."""
        from .base_distributions import BASES

        return [base for base in BASES if pretrained_path(self.kind, base).is_file()]

    def __contains__(self, base) -> bool:
        return base in self.bases()

    def __iter__(self):
        return iter(self.bases())

    def __len__(self) -> int:
        return len(self.bases())

    def __repr__(self) -> str:
        return f"PretrainedModels({self.kind!r}): {self.bases()}"
