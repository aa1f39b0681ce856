"""The chapter's key figures as PNG files, drawn by the same package code the notebook uses.

    python -m tools.export_figures figures            # what `make figures` runs
    python -m tools.export_figures out --base uniform

Each figure is drawn from fixed seeds at a low resolution with no timestamp in the file, so
running the command twice writes identical bytes. The models are the shipped checkpoints
(``pretrained.load_pretrained``); tests pass their own small models instead.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from gen_models_utilities.base_distributions import BASES, canonical_base_name, sample_base
from gen_models_utilities.pretrained import load_pretrained
from gen_models_utilities.data import create_ring_gaussians
from gen_models_utilities.metrics import ring_quality
from gen_models_utilities.models import ExtrapolationWarning, class_code
from gen_models_utilities.plotting import (plot_conditional_samples_continuous, plot_conditional_samples_discrete,
                                           plot_pairs, plot_samples, plot_velocity_field)
from gen_models_utilities.solvers import generate
from gen_models_utilities.style import use_book_style
from gen_models_utilities.widgets import figure_png

FIGURE_NAMES = ("pairs", "velocity_field", "samples", "conditional_modes", "radius")
CHAPTER_KINDS = ("fm", "onehot", "radius")     # the chapter's models, shipped for every base
RADII = (1.5, 2.5, 3.0, 3.5, 4.5)        # 1.5 and 4.5 lie outside the trained radii (extrapolation)


def load_models(base: str = "gaussian") -> dict:
    """The shipped models for ``base``: {'fm': ..., 'onehot': ..., 'radius': ...}."""
    return {kind: load_pretrained(kind, base)[0] for kind in CHAPTER_KINDS}


def pairs_figure(n_points: int = 800, seed: int = 0):
    """Random straight-line pairs from each base distribution to the ring (one panel per base)."""
    import matplotlib.pyplot as plt

    data, _ = create_ring_gaussians(n_points, seed=seed)
    fig, axes = plt.subplots(1, len(BASES), figsize=(4 * len(BASES), 4.2), squeeze=False)
    for ax, (name, base) in zip(axes[0], BASES.items()):
        plot_pairs(sample_base(name, n_points, seed=seed + 1), data, n_lines=12, ax=ax, title=base.label)
    fig.tight_layout()
    return fig


def field_figure(model, base: str = "gaussian", times=(0.0, 0.5, 1.0)):
    """The unconditional model's velocity field at several times."""
    import matplotlib.pyplot as plt

    data, _ = create_ring_gaussians(1000, seed=7)
    fig, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 4.2))
    for ax, t in zip(np.atleast_1d(axes), times):
        plot_velocity_field(model, t, ax=ax, data=data, base=sample_base(base, 1000, seed=1))
    fig.tight_layout()
    return fig


def samples_figure(model, base: str = "gaussian", n_samples: int = 1000, n_steps: int = 100):
    """Generated samples against the data, with the quality figures in the title."""
    data, _ = create_ring_gaussians(n_samples, seed=12345)
    samples = generate(model, n_samples, base=base, n_steps=n_steps, seed=0).x
    quality = str(ring_quality(samples))
    fig = plot_samples(samples, data=data, title=f"{n_steps} Euler steps from the {base} base")
    fig.set_size_inches(6, 6.4)
    fig.text(0.5, 0.01, quality.replace(" | ", "\n", 1), ha="center", fontsize="x-small")
    return fig


def conditional_modes_figure(model, base: str = "gaussian", n_per_mode: int = 150, n_steps: int = 100):
    """Samples of the one-hot model for every mode, coloured like their mode."""
    data, labels = create_ring_gaussians(2000, seed=7)
    by_mode = {mode: generate(model, n_per_mode, base=base, n_steps=n_steps, seed=mode,
                              condition=class_code(mode, model.condition_dim)).x
               for mode in range(model.condition_dim)}
    return plot_conditional_samples_discrete(by_mode, real_data=data, real_labels=labels,
                                             title=f"one sample set per mode, from the {base} base")


def radius_figure(model, base: str = "gaussian", radii=RADII, n_per_radius: int = 150, n_steps: int = 100):
    """Samples of the radius model at several radii; radii it never saw are marked as extrapolation."""
    data, _ = create_ring_gaussians(2000, seed=7)
    with warnings.catch_warnings():            # the figure marks the radii outside training itself
        warnings.simplefilter("ignore", ExtrapolationWarning)
        by_radius = {float(r): generate(model, n_per_radius, base=base, n_steps=n_steps, seed=i,
                                        condition=torch.tensor([float(r)])).x
                     for i, r in enumerate(radii)}
    low, high = model.trained_radius_range.tolist()
    trained = None if low != low else (low, high)
    return plot_conditional_samples_continuous(by_radius, real_data=data, trained_range=trained,
                                               title=f"radius conditioning, from the {base} base")


def make_figures(folder, models: dict | None = None, base: str = "gaussian", dpi: int = 72) -> list[Path]:
    """Draw every figure of FIGURE_NAMES into ``folder`` as ``<name>.png``; returns the paths.

    ``models`` maps 'fm', 'onehot' and 'radius' to trained models (default: the shipped ones).
    Plot style is the book's, applied only while drawing.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    base = canonical_base_name(base)
    models = load_models(base) if models is None else models
    missing = [kind for kind in CHAPTER_KINDS if kind not in models]
    if missing:
        raise ValueError(f"models must hold {list(CHAPTER_KINDS)}, missing {missing}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawers = {
        "pairs": lambda: pairs_figure(),
        "velocity_field": lambda: field_figure(models["fm"], base),
        "samples": lambda: samples_figure(models["fm"], base),
        "conditional_modes": lambda: conditional_modes_figure(models["onehot"], base),
        "radius": lambda: radius_figure(models["radius"], base),
    }
    paths = []
    with matplotlib.rc_context():
        use_book_style()
        for name in FIGURE_NAMES:
            fig = drawers[name]()
            try:
                path = folder / f"{name}.png"
                path.write_bytes(figure_png(fig, dpi=dpi))
                paths.append(path)
            finally:
                plt.close(fig)
    return paths


def main(argv=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="figures", help="where to write the PNG files")
    parser.add_argument("--base", default="gaussian", choices=tuple(BASES), help="base distribution of the models")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for path in make_figures(args.folder, base=args.base):
        print(path)


if __name__ == "__main__":
    main()
