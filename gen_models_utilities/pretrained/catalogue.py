"""The catalogue of shipped models: one table of model kinds, and where their checkpoints live.

A model kind is what ``load_pretrained(kind, base)`` asks for: the chapter's three ('fm',
'onehot', 'radius', shipped for every base of ``BASES``) and the companion notebooks' variants
(17a's OT blocks, reflow and MeanFlow, 17b's diffusion model and CNF, 17c's digit model and classifier,
shipped on one base). Each entry
holds the recipe it is trained by (``pretrained.recipes`` reads it); ``shipped()`` lists every
(kind, base) that has a file, for the tools, the tests and the widgets.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .._checks import _short, check_choice, check_entry
from ..base_distributions import BASES, canonical_base_name
from .store import load_checkpoint

PRETRAINED_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelKind:
    """One shipped model kind.

    name: the kind, e.g. 'fm' or 'fm_reflow'. recipe: how it is trained (its model class under
    'model', its trainer under 'trainer' unless it is flow matching, its budget and options).
    base: the one base it ships on, or None for every base of ``BASES``.
    """

    name: str
    recipe: Mapping = field(default_factory=dict)
    base: str | None = None

    @property
    def bases(self) -> tuple[str, ...]:
        """The bases this kind ships on (every registered one when ``base`` is None)."""
        return tuple(BASES) if self.base is None else (self.base,)


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model_kind(kind: ModelKind) -> ModelKind:
    """Add ``kind`` to ``MODEL_KINDS`` (replacing one of the same name) and return it."""
    check_entry("kind", kind, ModelKind)
    if not isinstance(kind.recipe, Mapping):
        raise TypeError(f"kind.recipe must be a dict of training settings, got {_short(kind.recipe)}")
    if kind.base is not None and kind.base not in BASES:
        raise ValueError(f"kind.base must be None or one of {list(BASES)}, got {_short(kind.base)}")
    MODEL_KINDS[kind.name] = kind
    return kind


# The chapter's recipe (AdamW, lr 1e-3, t ~ U[0, 1]) trained longer leaves about 2.3-2.6% of
# samples between the modes; logit-normal times and a cosine-decayed lr bring that to about 0.5%.
COMMON = {"batch_size": 512, "lr": 2e-3, "schedule": "cosine", "time_sampling": "logit_normal"}
FM = {"model": "VelocityField", "n_steps": 8000, **COMMON}

register_model_kind(ModelKind("fm", FM))
register_model_kind(ModelKind("onehot", {"model": "ConditionalVelocityField", "n_steps": 4000, **COMMON}))
register_model_kind(ModelKind("radius", {"model": "ConditionalVelocityFieldRadius", "n_steps": 4000, **COMMON}))
# 17a: the fm recipe with OT pairs inside blocks ('coupling' names a key of couplings.COUPLINGS), and
# one reflow: start from the teacher's weights and train on ``pairs`` pairs (x0, ODE(x0)) made by the
# teacher with ``pair_solver``.
for _size in (256, 128, 64):
    register_model_kind(ModelKind(f"fm_ot_block{_size}", {**FM, "coupling": f"ot_block{_size}"}, "gaussian"))
register_model_kind(ModelKind("fm_reflow", {**FM, "teacher": "fm_gaussian", "pairs": 32000, "pair_solver": "rk4",
                                            "pair_steps": 25, "pair_seed": 1}, "gaussian"))
# 17a's MeanFlow: the average-velocity network (a second time input) trained with the MeanFlow loss
# (``meanflow.train_meanflow``) on the fm budget, half of its time pairs with r = t.
register_model_kind(ModelKind("meanflow", {"trainer": "meanflow", "model": "AverageVelocityField", "n_steps": 8000,
                                           "batch_size": 512, "lr": 2e-3, "schedule": "cosine",
                                           "time_sampling": "logit_normal", "equal_share": 0.5, "activation": "silu"},
                              "gaussian"))
# 17b's other methods, with their own trainers: diffusion with the fm budget (8000 steps of 512),
# a CNF by maximum likelihood through a 4-step RK4 solve, with a smooth activation.
register_model_kind(ModelKind("diffusion", {"trainer": "diffusion", "model": "DiffusionModel", "n_steps": 8000,
                                            "batch_size": 512, "lr": 2e-3, "schedule": "cosine"}, "gaussian"))
register_model_kind(ModelKind("cnf", {"trainer": "cnf", "model": "VelocityField", "n_steps": 1500, "batch_size": 256,
                                      "lr": 2e-3, "schedule": "cosine", "ode_steps": 4, "activation": "silu"},
                              "gaussian"))
# 17c's digits (scikit-learn's 8 x 8 images, 64-dimensional points): a one-hot flow matching MLP trained with
# condition dropout (for classifier-free guidance), and the small classifier whose features 17c's Fréchet
# distance uses. Both start from the Gaussian (a classifier has no base, but a shipped file is <kind>_<base>.pt).
register_model_kind(ModelKind("digits", {"trainer": "digits", "model": "DigitVelocity", "n_steps": 20000,
                                         "batch_size": 128, "lr": 2e-3, "schedule": "cosine",
                                         "condition_dropout": 0.2}, "gaussian"))
register_model_kind(ModelKind("digits_classifier", {"trainer": "digits_classifier", "model": "DigitClassifier",
                                                    "n_steps": 2000, "batch_size": 128, "lr": 2e-3,
                                                    "schedule": "cosine"}, "gaussian"))


def check_kind_and_base(kind: str, base: str) -> tuple[str, str]:
    """(kind, canonical base) for a kind of ``MODEL_KINDS`` on a base it ships on."""
    entry = MODEL_KINDS[check_choice("kind", kind, tuple(MODEL_KINDS))]
    base = canonical_base_name(base)
    if base not in entry.bases:
        raise ValueError(f"base must be {entry.base!r} for the model kind {kind!r}, got {base!r}")
    return kind, base


def shipped() -> list[tuple[str, str]]:
    """Every (kind, base) the package ships a checkpoint of, in table order (a teacher before its reflow)."""
    return [(kind.name, base) for kind in MODEL_KINDS.values() for base in kind.bases]


def pretrained_path(kind: str, base: str = "gaussian") -> Path:
    """Where the shipped checkpoint of ``kind`` (a key of ``MODEL_KINDS``) trained from ``base`` lives."""
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
        self.kind = check_choice("kind", kind, tuple(MODEL_KINDS))
        self._loaded: dict = {}

    def __getitem__(self, base: str) -> nn.Module:
        if base not in self:
            raise KeyError(base)
        if base not in self._loaded:
            self._loaded[base] = load_pretrained(self.kind, base)[0]
        return self._loaded[base]

    def bases(self) -> list[str]:
        """The bases, in registry order, that have a checkpoint of this kind."""
        return [base for base in MODEL_KINDS[self.kind].bases if pretrained_path(self.kind, base).is_file()]

    def __contains__(self, base) -> bool:
        return base in self.bases()

    def __iter__(self):
        return iter(self.bases())

    def __len__(self) -> int:
        return len(self.bases())

    def __repr__(self) -> str:
        return f"PretrainedModels({self.kind!r}): {self.bases()}"
