"""Shipped models: saving and loading (``store``), the catalogue of shipped files
(``catalogue``) and how each is trained (``recipes``). The ``.pt`` files live in this folder;
``make checkpoints`` (``python -m tools.retrain_checkpoints``) rebuilds them."""
from .catalogue import (MODEL_KINDS, ModelKind, PretrainedModels, load_pretrained, pretrained_path,
                        register_model_kind, shipped)
from .store import CheckpointError, load_checkpoint, save_checkpoint
from . import recipes  # noqa: E402  (how each shipped model is trained; imports the trainers)

__all__ = ["CheckpointError", "MODEL_KINDS", "ModelKind", "PretrainedModels", "load_checkpoint", "load_pretrained",
           "pretrained_path", "recipes", "register_model_kind", "save_checkpoint", "shipped"]
