"""How the shipped checkpoints are made: one recipe per model kind, for every base in ``BASES``.

``train_recipe(kind, base)`` trains from scratch and measures the quality figures stored with
the checkpoint (``python -m tools.retrain_checkpoints`` runs it for every kind and base).
``COMPANIONS`` adds the models of the companion notebooks: variants of a chapter kind on one
base, trained with the same budget, loaded like the others (``load_pretrained("fm_reflow", "gaussian")``).
"""
from __future__ import annotations

import numpy as np
import torch

from ._checks import check_choice
from .base_distributions import canonical_base_name
from .data import create_ring_gaussians
from .guidance import class_code, requested_mode_fraction
from .metrics import off_mode_fraction, ring_quality
from .models import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from .solvers import generate
from .training import train

DATA_SIZE = 8000
DATA_SEED = 0
# kind -> (model class, training steps)
MODEL_KINDS = {"fm": (VelocityField, 8000), "onehot": (ConditionalVelocityField, 4000),
               "radius": (ConditionalVelocityFieldRadius, 4000)}
# The chapter's recipe (AdamW, lr 1e-3, t ~ U[0, 1]) trained longer leaves about 2.3-2.6% of
# samples between the modes; logit-normal times and a cosine-decayed lr bring that to about 0.5%.
COMMON = {"batch_size": 512, "lr": 2e-3, "schedule": "cosine", "time_sampling": "logit_normal"}
# companion -> (chapter kind, base, what differs from that kind's recipe). 'coupling' names a
# key of couplings.COUPLINGS; a 'teacher' recipe is one reflow: start from the teacher's weights
# and train on ``pairs`` pairs (x0, ODE(x0)) made by the teacher with ``pair_solver``.
COMPANIONS = {
    "fm_ot_block256": ("fm", "gaussian", {"coupling": "ot_block256"}),
    "fm_ot_block128": ("fm", "gaussian", {"coupling": "ot_block128"}),
    "fm_ot_block64": ("fm", "gaussian", {"coupling": "ot_block64"}),
    "fm_reflow": ("fm", "gaussian", {"teacher": "fm_gaussian", "pairs": 32000, "pair_solver": "rk4",
                                     "pair_steps": 25, "pair_seed": 1}),
    # 17b's other methods, with their own trainers: diffusion with the fm budget (8000 steps of 512),
    # a CNF by maximum likelihood through a 4-step RK4 solve, with a smooth activation.
    "diffusion": (None, "gaussian", {"trainer": "diffusion", "model": "DiffusionModel", "n_steps": 8000,
                                     "batch_size": 512, "lr": 2e-3, "schedule": "cosine"}),
    "cnf": (None, "gaussian", {"trainer": "cnf", "model": "VelocityField", "n_steps": 1500, "batch_size": 256,
                               "lr": 2e-3, "schedule": "cosine", "ode_steps": 4, "activation": "silu"}),
}


def check_kind_and_base(kind: str, base: str) -> tuple[str, str]:
    """(kind, canonical base) for a chapter kind on any base or a companion on its own base."""
    check_choice("kind", kind, tuple(MODEL_KINDS) + tuple(COMPANIONS))
    base = canonical_base_name(base)
    if kind in COMPANIONS and base != COMPANIONS[kind][1]:
        raise ValueError(f"base must be {COMPANIONS[kind][1]!r} for the companion model {kind!r}, got {base!r}")
    return kind, base


def recipe(kind: str, base: str) -> dict:
    """The recipe of the shipped model of ``kind`` ('fm', 'onehot', 'radius' or a key of
    ``COMPANIONS``) trained from ``base``."""
    kind, base = check_kind_and_base(kind, base)
    chapter_kind, _, changes = COMPANIONS.get(kind, (kind, base, {}))
    if chapter_kind is None:                   # a method with its own trainer: its recipe says all
        return {"base": base, **changes}
    model_class, n_steps = MODEL_KINDS[chapter_kind]
    return {"model": model_class.__name__, "base": base, "n_steps": n_steps, **COMMON, **changes}


def measure_quality(model, base: str, n_samples: int = 2000, seed: int = 1) -> dict:
    """Quality figures stored with a checkpoint (100 Euler steps from ``base``)."""
    kind = getattr(model, "condition_kind", None)
    if kind is None:
        quality = ring_quality(generate(model, n_samples, base=base, n_steps=100, seed=seed).x)
        return {"w2": round(quality.w2, 4), "off_mode_fraction": round(quality.off_mode_fraction, 4)}
    if kind == "onehot":
        hits = []
        for mode in range(model.condition_dim):
            x = generate(model, n_samples // model.condition_dim, base=base,
                         condition=class_code(mode, model.condition_dim), seed=seed + mode).x
            hits.append(requested_mode_fraction(x, mode))
        return {"requested_mode_fraction": round(float(np.mean(hits)), 4)}
    errors = []
    for radius in (2.5, 3.0, 3.5):
        x = generate(model, n_samples // 3, base=base, condition=torch.tensor([radius]), seed=seed).x
        errors.append(float((x.norm(dim=1) - radius).abs().median()))
    return {"median_radius_error": round(float(np.mean(errors)), 4),
            "off_mode_fraction_r3": round(off_mode_fraction(
                generate(model, 1000, base=base, condition=torch.tensor([3.0]), seed=seed).x), 4)}


def train_recipe(kind: str, base: str, n_steps: int | None = None, seed: int = 0, progress: bool = False):
    """Train the recipe of (``kind``, ``base``) from scratch; returns (model, metadata for save_checkpoint)."""
    spec = recipe(kind, base)
    if n_steps is not None:
        spec["n_steps"] = n_steps
    if "teacher" in spec:
        return _train_reflow(kind, spec, seed, progress)
    if "trainer" in spec:
        return _train_other_method(kind, spec, seed, progress)
    chapter_kind = COMPANIONS.get(kind, (kind,))[0]
    with torch.random.fork_rng(devices=[]):     # seeded initial weights; global state left as it was
        torch.manual_seed(seed)
        model = MODEL_KINDS[chapter_kind][0]()
    points, labels = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    result = train(model, points, base=spec["base"], n_steps=spec["n_steps"], batch_size=spec["batch_size"],
                   lr=spec["lr"], schedule=spec["schedule"], time_sampling=spec["time_sampling"],
                   coupling=spec.get("coupling", "independent"),
                   labels=labels if chapter_kind == "onehot" else None, seed=seed, progress=progress)
    return model, _metadata(kind, spec, model, result)


def _train_reflow(kind: str, spec: dict, seed: int, progress: bool):
    """One reflow of the shipped teacher: its weights, retrained on pairs from its own ODE."""
    from .checkpoints import load_pretrained
    from .reflow import reflow_pairs, train_on_pairs

    teacher_kind = spec["teacher"].removesuffix(f"_{spec['base']}")
    model, _ = load_pretrained(teacher_kind, spec["base"])
    pairs = reflow_pairs(model, spec["pairs"], base=spec["base"], method=spec["pair_solver"],
                         n_steps=spec["pair_steps"], seed=spec["pair_seed"])
    result = train_on_pairs(model, pairs, n_steps=spec["n_steps"], batch_size=spec["batch_size"], lr=spec["lr"],
                            schedule=spec["schedule"], time_sampling=spec["time_sampling"], seed=seed,
                            progress=progress)
    return model, _metadata(kind, spec, model, result)


def _train_other_method(kind: str, spec: dict, seed: int, progress: bool):
    """17b's diffusion model or CNF, trained by its own trainer on the recipes' data."""
    from . import cnf, diffusion

    options = {key: spec[key] for key in ("n_steps", "batch_size", "lr", "schedule")}
    points, _ = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = diffusion.DiffusionModel() if spec["trainer"] == "diffusion" else VelocityField(
            activation=spec["activation"])
    if spec["trainer"] == "diffusion":
        result = diffusion.train_diffusion(model, points, seed=seed, progress=progress, **options)
    else:
        result = cnf.train_cnf(model, points, ode_steps=spec["ode_steps"], seed=seed, progress=progress, **options)
    return model, _metadata(kind, spec, model, result, quality=False)


def _metadata(kind: str, spec: dict, model, result, quality: bool = True) -> dict:
    """What a checkpoint stores about its training; ``quality``: the figures of ``measure_quality``
    (flow matching models only)."""
    return {"recipe_name": f"{kind}_{spec['base']}", "base": spec["base"], "recipe": spec,
            "steps": spec["n_steps"], "train_seconds": round(result.seconds, 1),
            "final_loss": round(float(np.mean(result.losses[-200:])), 4),
            **({"quality": measure_quality(model, spec["base"])} if quality else {})}
