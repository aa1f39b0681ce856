"""Measuring flow matching, diffusion and a CNF side by side (notebook 17b).

The shipped companions of the flow matching checkpoint (a diffusion model and a CNF, with
their recipes), sample quality against the number of solver steps with the yardstick
``metrics.ring_quality``, the fewest steps that give samples as good as data, a count of
diverged training runs, and a plain-text table narrow enough for a projector.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ._checks import check_choice, check_positive_int
from .metrics import ring_quality

# The shipped companions of the flow matching model, trained from the Gaussian base on the same
# 8000 ring points: diffusion with the fm checkpoint's budget (8000 steps of 512), the CNF by
# maximum likelihood through a 4-step RK4 solve with a smooth activation.
COMPANION_RECIPES = {
    "diffusion": {"n_steps": 8000, "batch_size": 512, "lr": 2e-3, "schedule": "cosine"},
    "cnf": {"n_steps": 1500, "batch_size": 256, "lr": 2e-3, "schedule": "cosine", "ode_steps": 4,
            "activation": "silu"},
}


def companion_path(name: str):
    """Where the shipped companion model ``name`` ('diffusion' or 'cnf') lives."""
    from .checkpoints import PRETRAINED_DIR

    return PRETRAINED_DIR / f"{check_choice('name', name, tuple(COMPANION_RECIPES))}_gaussian.pt"


def train_companion(name: str, seed: int = 0, progress=None):
    """Train the companion ``name`` by its recipe from scratch; returns (model, metadata)."""
    from . import cnf, diffusion
    from .data import create_ring_gaussians
    from .models import VelocityField

    recipe = dict(COMPANION_RECIPES[check_choice("name", name, tuple(COMPANION_RECIPES))])
    points, _ = create_ring_gaussians(8000, seed=0)
    with torch.random.fork_rng(devices=[]):     # seeded initial weights; global state left as it was
        torch.manual_seed(seed)
        model = diffusion.DiffusionModel() if name == "diffusion" else VelocityField(activation=recipe["activation"])
    if name == "diffusion":
        result = diffusion.train_diffusion(model, points, seed=seed, progress=progress, **recipe)
    else:
        options = {key: value for key, value in recipe.items() if key != "activation"}
        result = cnf.train_cnf(model, points, seed=seed, progress=progress, **options)
    metadata = {"recipe_name": f"{name}_gaussian", "base": "gaussian", "recipe": recipe, "seed": seed,
                "steps": recipe["n_steps"], "train_seconds": round(result.seconds, 1),
                "final_loss": round(float(np.mean(result.losses[-100:])), 4)}
    return model, metadata


def load_companion(name: str):
    """The shipped companion model ``name`` ('diffusion' or 'cnf'), in eval mode."""
    from . import diffusion  # noqa: F401  (registers DiffusionModel with the checkpoints)
    from .checkpoints import load_checkpoint

    path = companion_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {path.name}; run `python -m gen_models_utilities.comparison`")
    return load_checkpoint(path)[0]


def quality_by_steps(sample: Callable[[int], torch.Tensor], step_grid) -> dict:
    """``metrics.ring_quality`` of ``sample(n_steps) -> (N, 2)`` for each n in ``step_grid``.

    Returns {n_steps: {"quality": Quality, "seconds": sampling time}} in the order of ``step_grid``.
    """
    result = {}
    for n_steps in step_grid:
        n_steps = check_positive_int("step_grid entry", n_steps)
        start = time.perf_counter()
        samples = sample(n_steps)
        seconds = time.perf_counter() - start
        result[n_steps] = {"quality": ring_quality(samples), "seconds": seconds}
    return result


def fewest_steps_like_data(by_steps: dict) -> int | None:
    """The smallest step count of a ``quality_by_steps`` result from which on every larger count
    in it is as good as data (``Quality.as_good_as_data``), or None."""
    counts = sorted(by_steps)
    good = [by_steps[n]["quality"].as_good_as_data for n in counts]
    for i, n in enumerate(counts):
        if all(good[i:]):
            return n
    return None


def short_verdict(quality) -> str:
    """A table cell for a ``Quality``: 'like data', or what gives it away ('W2', 'off-mode', 'modes')."""
    problems = quality.problems()
    if not problems:
        return "like data"
    tags = ["W2" if p.startswith("W2") else "modes" if p.startswith("modes") else "off-mode" for p in problems]
    return "unlike: " + ", ".join(tags)


def quality_cell(quality) -> str:
    """A short table cell for a ``Quality``: 'W2  off-mode%', with ' *' when as good as data."""
    mark = " *" if quality.as_good_as_data else "  "
    return f"{quality.w2:.2f} {100 * quality.off_mode_fraction:4.1f}%{mark}"


def diverged(losses) -> bool:
    """True when a training run blew up: a loss that is not finite, or a mean loss over the last
    tenth of the steps above the mean over the first tenth."""
    losses = np.asarray(losses, dtype=float)
    if losses.size == 0:
        raise ValueError("losses must hold at least one value")
    if not np.all(np.isfinite(losses)):
        return True
    tenth = max(losses.size // 10, 1)
    return bool(losses[-tenth:].mean() > losses[:tenth].mean())


def format_table(rows: dict, columns: list[str]) -> str:
    """A plain-text table: ``rows`` {row name: {column: value}}; values printed as given (str)."""
    if not rows:
        raise ValueError("rows must hold at least one row")
    names = list(rows)
    widths = [max(len(c), *(len(str(rows[n].get(c, ""))) for n in names)) for c in columns]
    first = max(len(n) for n in names)
    lines = [" " * first + " | " + " | ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    for n in names:
        lines.append(n.ljust(first) + " | " + " | ".join(str(rows[n].get(c, "")).rjust(w)
                                                          for c, w in zip(columns, widths)))
    return "\n".join(lines)


def spread(values) -> str:
    """'mean ± std' of a few numbers, rounded to two decimals."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("values must hold at least one number")
    return f"{values.mean():.2f} ± {values.std():.2f}"


if __name__ == "__main__":      # python -m gen_models_utilities.comparison [--force]: rebuild the companions
    import sys

    from .checkpoints import save_checkpoint

    for companion in COMPANION_RECIPES:
        if companion_path(companion).is_file() and "--force" not in sys.argv:
            print(f"{companion_path(companion).name:24s} present")
            continue
        trained, info = train_companion(companion)
        save_checkpoint(trained, companion_path(companion), **info)
        print(f"{companion_path(companion).name:24s} trained in {info['train_seconds']} s")
