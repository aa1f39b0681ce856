"""Explorers of the companion notebooks (17a: solvers, couplings, reflow).

As in ``widgets``: a plain draw function that tests call directly and returns
``(Figure, text)``, and a builder that wires a few controls to it through ``widgets.Explorer``
(one Output area redrawn in place, figures closed, refused values shown as a message).
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_real
from .base_distributions import canonical_base_name, sample_base
from .metrics import format_quality, path_straightness, ring_quality, w2_floor
from .plotting import class_color, square_axes
from .solvers import EVALUATIONS_PER_STEP, METHODS, solve_ode
from .widgets import Explorer, background_data

MAX_NFE = 32                 # the NFE slider runs from 1 to MAX_NFE
FINE_STEPS = 50              # RK4 steps of the reference solve whose paths are drawn in grey


def steps_for_budget(method: str, nfe: int) -> int:
    """Fixed steps of ``method`` that fit in ``nfe`` network evaluations (at least one step).

    For 'dopri5' the budget cannot be set (it adapts its steps); ``nfe`` is returned as the
    number of reported trajectory points.
    """
    method = check_choice("method", method, METHODS)
    nfe = check_positive_int("nfe", nfe, maximum=10_000)
    if method == "dopri5":
        return nfe
    return max(1, nfe // EVALUATIONS_PER_STEP[method])


def _conditions(model: nn.Module, n_samples: int):
    """One-hot codes cycling through the classes for a one-hot model: (n, C) and labels (n,)."""
    kind = getattr(model, "condition_kind", None)
    if kind is None:
        return None, None
    if kind != "onehot":
        raise TypeError(f"models must be unconditional or one-hot models, got {type(model).__name__}")
    labels = torch.arange(n_samples) % model.condition_dim
    return nn.functional.one_hot(labels, model.condition_dim).float(), labels


def draw_few_step_sampler(models: dict, coupling: str, method: str = "euler", nfe: int = 2,
                          n_samples: int = 500, n_paths: int = 40, base: str = "gaussian", seed: int = 0,
                          data=None, floor: float | None = None):
    """Samples (left) and paths (right) of the model trained with ``coupling``, solved in ``nfe``.

    Args:
        models: {coupling name: trained model}, e.g. {"independent": m1, "minibatch OT": m2}.
            One-hot models get class-balanced codes and are drawn in class colours.
        coupling: a key of ``models``. method: 'euler', 'midpoint', 'heun', 'rk4' or 'dopri5'.
        nfe: network evaluations allowed (fixed-step methods use nfe // evaluations per step,
            at least one step; dopri5 chooses its own and reports it).
        n_samples, seed: the samples, from a fixed seed so redraws are comparable.
        n_paths: how many particles' paths to draw: grey the accurate path (RK4, 50 steps),
            coloured the path the chosen solver took.
        data: (N, 2) reference for W2 and the background (default 1000 fresh ring points);
            floor: the data-to-data W2 at the size n_samples (computed when None).

    Returns:
        (figure, text): the plot and a line with the cost, W2 against its floor, the off-mode
        share and the straightness of the model's accurate paths.
    """
    import matplotlib.pyplot as plt

    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{coupling name: model}}, got {type(models).__name__}")
    coupling = check_choice("coupling", coupling, tuple(models))
    model = models[coupling]
    n_steps = steps_for_budget(method, nfe)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2, maximum=20_000)
    n_paths = min(check_positive_int("n_paths", n_paths), n_samples)
    base = canonical_base_name(base)
    reference = background_data()[0] if data is None else data
    floor = w2_floor(n_samples) if floor is None else check_real("floor", floor, low=0.0, low_open=True)
    conditions, labels = _conditions(model, n_samples)
    x0 = sample_base(base, n_samples, seed=seed)
    coarse = solve_ode(model, x0, n_steps=n_steps, method=method, condition=conditions, return_trajectory=True)
    fine = solve_ode(model, x0[:n_paths], n_steps=FINE_STEPS, method="rk4",
                     condition=None if conditions is None else conditions[:n_paths], return_trajectory=True)
    quality = ring_quality(coarse.x, reference=reference)
    samples = coarse.x.numpy()
    colors = "tab:red" if labels is None else [class_color(k) for k in labels.tolist()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.5))
    left.scatter(reference[:, 0], reference[:, 1], s=3, color="0.7", alpha=0.4)
    left.scatter(samples[:, 0], samples[:, 1], s=4, c=colors, alpha=0.7)
    square_axes(left, f"{coupling}: {method}, {coarse.nfe} NFE")
    fine_paths, coarse_paths = fine.trajectory.numpy(), coarse.trajectory[:, :n_paths].numpy()
    right.plot(fine_paths[:, :, 0], fine_paths[:, :, 1], color="0.6", lw=0.8)
    for i in range(n_paths):
        color = "tab:blue" if labels is None else class_color(int(labels[i]))
        right.plot(coarse_paths[:, i, 0], coarse_paths[:, i, 1], "-o", color=color, lw=1, ms=2)
    square_axes(right, "accurate path (grey) and the solver's steps")
    fig.tight_layout()
    text = (f"{coupling}: {method}, {n_steps} step{'s' if n_steps > 1 else ''} = {coarse.nfe} NFE | "
            f"straightness of the accurate paths {path_straightness(fine.trajectory):.3f}\n"
            + format_quality(quality, floor))
    return fig, text


def few_step_explorer(models: dict, coupling: str | None = None, method: str = "euler", nfe: int = 2,
                      n_samples: int = 500, seed: int = 0, data=None, floor: float | None = None) -> Explorer:
    """Controls 'coupling', 'solver' and 'NFE' (1 to 32) redrawing ``draw_few_step_sampler``."""
    import ipywidgets as widgets

    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{coupling name: model}}, got {type(models).__name__}")
    coupling = next(iter(models)) if coupling is None else check_choice("coupling", coupling, tuple(models))
    data = background_data()[0] if data is None else data
    n_samples = check_positive_int("n_samples", n_samples, minimum=2, maximum=20_000)
    floor = w2_floor(n_samples) if floor is None else check_real("floor", floor, low=0.0, low_open=True)
    controls = {
        "coupling": widgets.Dropdown(options=list(models), value=coupling, description="coupling"),
        "solver": widgets.Dropdown(options=list(METHODS), value=check_choice("method", method, METHODS),
                                   description="solver"),
        "NFE": widgets.IntSlider(value=check_positive_int("nfe", nfe, maximum=MAX_NFE), min=1, max=MAX_NFE,
                                 description="NFE", continuous_update=False),
    }
    explorer = Explorer(draw_few_step_sampler, controls, lambda v: dict(
        models=models, coupling=v["coupling"], method=v["solver"], nfe=v["NFE"], n_samples=n_samples,
        seed=seed, data=data, floor=floor))
    explorer.redraw()
    return explorer
