"""Training recipes of the shipped checkpoints: one place that says how each model was made.

``train_recipe(name)`` trains from scratch and measures the quality figures that are stored
with the checkpoint; ``n_steps`` shortens a recipe for tests.
"""
from __future__ import annotations

import numpy as np
import torch

from .data import create_ring_gaussians
from .metrics import distance_to_nearest_mode, off_mode_fraction, ring_quality
from .models import ConditionalVelocityField, ConditionalVelocityFieldRadius, VelocityField
from .solvers import generate
from .training import train

DATA_SIZE = 8000
DATA_SEED = 0
# The chapter's recipe (AdamW, lr 1e-3, t ~ U[0, 1]) trained longer leaves about 2.3-2.6% of
# samples between the modes; logit-normal times and a cosine-decayed lr bring that to about 0.5%.
_COMMON = {"batch_size": 512, "lr": 2e-3, "schedule": "cosine", "time_sampling": "logit_normal"}


def _recipe(model: str, base: str, n_steps: int, **extra) -> dict:
    return {"model": model, "base": base, "n_steps": n_steps, **_COMMON, **extra}


RECIPES = {
    "fm_gaussian": _recipe("VelocityField", "gaussian", 8000),
    "fm_uniform": _recipe("VelocityField", "uniform", 8000),
    "fm_ethz_logo": _recipe("VelocityField", "ethz_logo", 8000),
    "onehot_gaussian": _recipe("ConditionalVelocityField", "gaussian", 4000),
    "onehot_uniform": _recipe("ConditionalVelocityField", "uniform", 4000),
    "onehot_ethz_logo": _recipe("ConditionalVelocityField", "ethz_logo", 4000),
    "radius_gaussian": _recipe("ConditionalVelocityFieldRadius", "gaussian", 4000),
    "radius_uniform": _recipe("ConditionalVelocityFieldRadius", "uniform", 4000),
    "radius_ethz_logo": _recipe("ConditionalVelocityFieldRadius", "ethz_logo", 4000),
}
_MODELS = {"VelocityField": VelocityField, "ConditionalVelocityField": ConditionalVelocityField,
           "ConditionalVelocityFieldRadius": ConditionalVelocityFieldRadius}


def pretrained_name(kind: str, base: str) -> str:
    """Recipe name of the model of ``kind`` ('fm', 'onehot', 'radius') for a base distribution."""
    from .base_distributions import canonical_base_name

    name = f"{kind}_{canonical_base_name(base)}"
    if name not in RECIPES:
        raise ValueError(f"kind must be one of ['fm', 'onehot', 'radius'], got {kind!r}")
    return name


def measure_quality(model, base: str, n_samples: int = 2000, seed: int = 1) -> dict:
    """Quality figures stored with a checkpoint (100 Euler steps from ``base``)."""
    kind = getattr(model, "condition_kind", None)
    if kind is None:
        samples = generate(model, n_samples, base=base, n_steps=100, seed=seed).x
        quality = ring_quality(samples)
        return {"w2": round(quality["w2"], 4), "off_mode_fraction": round(quality["off_mode_fraction"], 4)}
    if kind == "onehot":
        hits = []
        for mode in range(model.condition_dim):
            code = torch.nn.functional.one_hot(torch.tensor(mode), model.condition_dim).float()
            x = generate(model, n_samples // model.condition_dim, base=base, condition=code, seed=seed + mode).x
            distance, nearest = distance_to_nearest_mode(x)
            hits.append(np.mean((nearest == mode) & (distance <= 0.75)))
        return {"requested_mode_fraction": round(float(np.mean(hits)), 4)}
    errors = []
    for radius in (2.5, 3.0, 3.5):
        x = generate(model, n_samples // 3, base=base, condition=torch.tensor([radius]), seed=seed).x
        errors.append(float((x.norm(dim=1) - radius).abs().median()))
    return {"median_radius_error": round(float(np.mean(errors)), 4),
            "off_mode_fraction_r3": round(off_mode_fraction(
                generate(model, 1000, base=base, condition=torch.tensor([3.0]), seed=seed).x), 4)}


def train_recipe(name: str, n_steps: int | None = None, seed: int = 0, progress: bool = False):
    """Train recipe ``name`` from scratch; returns (model, metadata for save_checkpoint)."""
    recipe = dict(RECIPES[name])
    if n_steps is not None:
        recipe["n_steps"] = n_steps
    with torch.random.fork_rng(devices=[]):     # seeded initial weights; global state left as it was
        torch.manual_seed(seed)
        model = _MODELS[recipe["model"]]()
    points, labels = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    result = train(model, points, base=recipe["base"], n_steps=recipe["n_steps"],
                   batch_size=recipe["batch_size"], lr=recipe["lr"], schedule=recipe["schedule"],
                   time_sampling=recipe["time_sampling"],
                   labels=labels if recipe["model"] == "ConditionalVelocityField" else None,
                   seed=seed, progress=progress)
    metadata = {"recipe_name": name, "base": recipe["base"], "recipe": recipe, "steps": recipe["n_steps"],
                "train_seconds": round(result.seconds, 1), "final_loss": round(float(np.mean(result.losses[-200:])), 4),
                "quality": measure_quality(model, recipe["base"])}
    return model, metadata
