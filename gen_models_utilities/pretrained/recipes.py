"""How the shipped checkpoints are made: each kind of ``catalogue.MODEL_KINDS`` by its recipe.

``train_recipe(kind, base)`` trains from scratch and measures the quality figures stored with
the checkpoint (``python -m tools.retrain_checkpoints`` runs it for every shipped (kind, base)).
A recipe's 'trainer' picks the trainer: flow matching (the default), one reflow of a shipped
teacher, 17a's MeanFlow, 17b's diffusion model or its CNF, 17c's digit model or its digit classifier.
"""
from __future__ import annotations

import numpy as np
import torch

from .._checks import check_choice
from ..baselines import cnf, diffusion
from ..data import create_ring_gaussians
from ..digits import load_digit_split, train_classifier, train_digit_flow
from ..guidance import requested_mode_fraction
from ..meanflow import train_meanflow
from ..metrics import off_mode_fraction, ring_quality
from ..models import MODEL_CLASSES, class_code
from ..reflow import reflow_pairs, train_on_pairs
from ..solvers import generate
from ..training import train
from .catalogue import MODEL_KINDS, check_kind_and_base, load_pretrained

DATA_SIZE = 8000
DATA_SEED = 0


def recipe(kind: str, base: str) -> dict:
    """The recipe of the shipped model of ``kind`` (a key of ``MODEL_KINDS``) trained from ``base``."""
    kind, base = check_kind_and_base(kind, base)
    return {"base": base, **MODEL_KINDS[kind].recipe}


def measure_quality(model, base: str, n_samples: int = 2000, seed: int = 1) -> dict:
    """Quality figures stored with a checkpoint (100 Euler steps from ``base``)."""
    kind = getattr(model, "condition_kind", None)
    if kind is None:
        quality = ring_quality(generate(model, n_samples, base=base, n_steps=100, seed=seed).x)
        return {"w2": round(quality.w2, 4), "off_mode_fraction": round(quality.off_mode_fraction, 4)}
    if kind not in ("onehot", "radius"):
        raise ValueError(f"model must be an unconditional, one-hot or radius model, got {type(model).__name__} "
                         f"with condition_kind {kind!r}")
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


def _new_model(spec: dict, seed: int):
    """The recipe's model class with seeded initial weights; the global random state is left as it was."""
    options = {"activation": spec["activation"]} if "activation" in spec else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODEL_CLASSES[spec["model"]].cls(**options)


def _train_flow_matching(spec: dict, seed: int, progress: bool):
    """The chapter's kinds and 17a's OT variants: ``training.train`` on the recipes' data."""
    model = _new_model(spec, seed)
    points, labels = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    result = train(model, points, base=spec["base"], n_steps=spec["n_steps"], batch_size=spec["batch_size"],
                   lr=spec["lr"], schedule=spec["schedule"], time_sampling=spec["time_sampling"],
                   coupling=spec.get("coupling", "independent"),
                   labels=labels if model.condition_kind == "onehot" else None, seed=seed, progress=progress)
    return model, result


def _train_reflow(spec: dict, seed: int, progress: bool):
    """One reflow of the shipped teacher: its weights, retrained on pairs from its own ODE."""
    teacher_kind = spec["teacher"].removesuffix(f"_{spec['base']}")
    model, _ = load_pretrained(teacher_kind, spec["base"])
    pairs = reflow_pairs(model, spec["pairs"], base=spec["base"], method=spec["pair_solver"],
                         n_steps=spec["pair_steps"], seed=spec["pair_seed"])
    result = train_on_pairs(model, pairs, n_steps=spec["n_steps"], batch_size=spec["batch_size"], lr=spec["lr"],
                            schedule=spec["schedule"], time_sampling=spec["time_sampling"], seed=seed,
                            progress=progress)
    return model, result


def _train_meanflow(spec: dict, seed: int, progress: bool):
    """17a's MeanFlow model: the MeanFlow loss on the recipes' data."""
    model = _new_model(spec, seed)
    points, _ = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    return model, train_meanflow(model, points, base=spec["base"], time_sampling=spec["time_sampling"],
                                 equal_share=spec["equal_share"], seed=seed, progress=progress, **_budget(spec))


def _train_diffusion(spec: dict, seed: int, progress: bool):
    """17b's noise-predicting diffusion model on the recipes' data."""
    model = _new_model(spec, seed)
    points, _ = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    return model, diffusion.train_diffusion(model, points, seed=seed, progress=progress, **_budget(spec))


def _train_cnf(spec: dict, seed: int, progress: bool):
    """17b's CNF, trained by maximum likelihood on the recipes' data."""
    model = _new_model(spec, seed)
    points, _ = create_ring_gaussians(DATA_SIZE, seed=DATA_SEED)
    return model, cnf.train_cnf(model, points, ode_steps=spec["ode_steps"], seed=seed, progress=progress,
                                **_budget(spec))


def _train_digits(spec: dict, seed: int, progress: bool):
    """17c's one-hot flow matching model of 8 x 8 digits, on the training split, with condition dropout."""
    model = _new_model(spec, seed)
    split = load_digit_split()
    return model, train_digit_flow(model, split.train_images, split.train_labels, seed=seed, progress=progress,
                                   condition_dropout=spec["condition_dropout"], **_budget(spec))


def _train_digit_classifier(spec: dict, seed: int, progress: bool):
    """17c's digit classifier, by cross-entropy on the training split."""
    model = _new_model(spec, seed)
    split = load_digit_split()
    return model, train_classifier(model, split.train_images, split.train_labels, seed=seed, progress=progress,
                                   **_budget(spec))


def _budget(spec: dict) -> dict:
    return {key: spec[key] for key in ("n_steps", "batch_size", "lr", "schedule")}


# trainer name -> (trainer, whether measure_quality applies: flow matching models only)
TRAINERS = {"flow_matching": (_train_flow_matching, True), "reflow": (_train_reflow, True),
            "meanflow": (_train_meanflow, False),
            "diffusion": (_train_diffusion, False), "cnf": (_train_cnf, False),
            "digits": (_train_digits, False), "digits_classifier": (_train_digit_classifier, False)}


def train_recipe(kind: str, base: str, n_steps: int | None = None, seed: int = 0, progress: bool = False):
    """Train the recipe of (``kind``, ``base``) from scratch; returns (model, metadata for save_checkpoint)."""
    spec = recipe(kind, base)
    if n_steps is not None:
        spec["n_steps"] = n_steps
    trainer, quality = TRAINERS[check_choice(f"the {kind!r} recipe's trainer", spec.get(
        "trainer", "reflow" if "teacher" in spec else "flow_matching"), tuple(TRAINERS))]
    model, result = trainer(spec, seed, progress)
    return model, {"recipe_name": f"{kind}_{spec['base']}", "base": spec["base"], "recipe": spec,
                   "steps": spec["n_steps"], "train_seconds": round(result.seconds, 1),
                   "final_loss": round(float(np.mean(result.losses[-200:])), 4),
                   **({"quality": measure_quality(model, spec["base"])} if quality else {})}
