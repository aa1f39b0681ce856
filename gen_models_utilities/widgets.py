"""Every interactive explorer of the suite, built one way on ipywidgets.

Two layers, so that tests never need a browser:

* plain draw functions (``draw_samples``, ``draw_field``, ``draw_mode``, ``draw_radius``,
  ``draw_few_step``, ``draw_guidance``, ``draw_training``), each taking models and settings,
  checking them and returning ``(Figure, text)``.
* builders (``sample_explorer``, ``field_explorer``, ``mode_explorer``, ``radius_explorer``,
  ``few_step_explorer``, ``guidance_explorer``, ``training_explorer``), each returning an
  :class:`Explorer`: a few controls wired to one draw function and one picture updated in place.

Pictures answer while a slider is dragged: an explorer keeps one figure (a :class:`Canvas`)
whose fixed layer (axes, data, base) is rendered once and whose moving layer (samples,
arrows, titles) is redrawn on it; a change first shows a quick picture (fewer samples, no
exact optimal transport) and, once the controls rest, the full one. Pictures are cached.

A new explorer is one draw function and one builder here, plus its test. The choices come
from the registries when an explorer is built: bases from ``base_distributions.BASES``,
solvers from ``solvers.SOLVERS``, so a base or solver registered at run time is offered.
``models`` arguments take one model or a dict {base name: model} (such as
``checkpoints.PretrainedModels("fm")``); with a dict, sampling starts from the chosen base with
the model trained from it.
"""
from __future__ import annotations

import copy
import functools
import inspect
import io
import struct
import threading
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_real
from .base_distributions import BASES, sample_base
from .data import create_ring_gaussians
from .couplings import COUPLINGS
from .guidance import requested_mode_fraction, sample_guided
from .live_training import LIVE_COUPLINGS, LiveTrainer, pause_all
from .models import ExtrapolationWarning, class_code
from .metrics import off_mode_fraction, path_straightness, ring_quality, samples_per_mode
from .plotting import (LIMIT, _dots, class_color, fit_margins, plot_conditional_samples_continuous,
                       plot_conditional_samples_discrete, plot_loss, plot_velocity_field, square_axes,
                       velocity_on_grid)
from .solvers import SOLVERS, generate, solve_ode, solver_names

MAX_STEPS = 500                  # the step slider runs from 1 to MAX_STEPS
MAX_NFE = 32                     # the NFE slider runs from 1 to MAX_NFE
RADIUS_LIMITS = (0.5, 5.0)       # the radius slider's range (the ring has radius 3)
GUIDANCE_LIMITS = (0.0, 8.0)     # the w slider's range
FINE_STEPS = 50                  # RK4 steps of the accurate paths drawn in grey by draw_few_step
FIGURE_DPI = 72
QUICK_SAMPLES = 64               # a quick picture (drawn while a control moves) draws this many samples at most
LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)
BATCH_SIZES = (64, 128, 256, 512, 1024)
COUPLING_CHOICES = {COUPLINGS[key].label: key for key in LIVE_COUPLINGS}     # label: couplings.COUPLINGS key


# ----------------------------------------------------------------------------------------
# Small helpers

def pick_model(models, base: str, kind: str | None = "any") -> nn.Module:
    """The model for ``base`` from one model or a dict {base name: model}; ``kind`` its condition_kind."""
    if isinstance(models, Mapping):
        if base not in models:
            raise ValueError(f"base must be one of the bases with a model {list(models)}, got {base!r}")
        models = models[base]
    if not isinstance(models, nn.Module):
        raise TypeError(f"models must be a torch.nn.Module or a dict {{base: model}}, got {type(models).__name__}")
    if kind != "any" and getattr(models, "condition_kind", None) != kind:
        wanted = "an unconditional model" if kind is None else f"a model with condition_kind={kind!r}"
        raise TypeError(f"this explorer needs {wanted}, got {type(models).__name__}")
    return models


@functools.lru_cache(maxsize=1)
def background_data(n_samples: int = 1000, seed: int = 7):
    """Ring points and labels drawn once for plot backgrounds: (n, 2) float32, (n,) int64."""
    return create_ring_gaussians(n_samples, seed=seed)


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    """The figure as PNG bytes (no timestamp or version written, so equal figures give equal bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def pixels_png(rgba: np.ndarray) -> bytes:
    """PNG bytes of the RGB channels of an (H, W, 4) uint8 image.

    Written directly: rows without PNG's per-row filters, deflated at zlib level 1. For a plot
    (mostly flat colour) that is about half the time of Pillow's encoder and no larger.
    """
    height, width = rgba.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), np.uint8)        # each row: filter type 0, then R, G, B, ...
    rows[:, 1:] = rgba[..., :3].reshape(height, 3 * width)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)    # 8-bit RGB, no interlacing
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def quick_count(n_samples: int) -> int:
    """How many samples a quick picture (drawn while a control moves) uses."""
    return min(n_samples, QUICK_SAMPLES)


def quick_quality(samples) -> str:
    """The quality figures that cost no optimal transport: off-mode share and per-mode counts."""
    return (f"off every mode {100 * off_mode_fraction(samples):.1f}% | per mode {samples_per_mode(samples).tolist()} "
            f"| {len(samples)} samples while the controls move; W2 when they rest")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ----------------------------------------------------------------------------------------
# Canvas: one figure, a fixed layer rendered once and a moving layer redrawn on it

class Canvas:
    """A figure redrawn in place: a fixed layer rendered once per key, a moving layer on top.

    ``axes(key, build)`` returns the figure's axes, first calling ``build(figure)`` (axes,
    limits, data in the background) when ``key`` differs from the last call's, and removes
    what the last frame added. Artists added after that call form the moving layer.
    ``png()`` pastes the fixed layer's pixels and draws only the moving layer and the titles.

    ``Canvas()`` draws into a new pyplot figure that the caller shows or closes (what the draw
    functions return); ``Canvas(live=True)`` keeps a figure outside pyplot, for explorers.
    """

    def __init__(self, live: bool = False):
        if live:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            import matplotlib

            self.figure = Figure(dpi=matplotlib.rcParams["figure.dpi"])   # 72, or more in the projector style
            FigureCanvasAgg(self.figure)
        else:
            import matplotlib.pyplot as plt

            self.figure = plt.figure()
        self.live, self.key, self.n_builds = live, None, 0
        self._fixed, self._background = set(), None

    def axes(self, key, build: Callable) -> list:
        """The axes for a new frame of ``key`` (the fixed layer rebuilt only when the key changes)."""
        if key != self.key:
            self.figure.clear()
            build(self.figure)
            self.key, self.n_builds = key, self.n_builds + 1
            self._fixed = {child for ax in self.figure.axes for child in ax.get_children()}
            if self.live:
                self.figure.canvas.draw()
                self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        else:
            for ax in self.figure.axes:
                for child in ax.get_children():
                    if child not in self._fixed:
                        child.remove()
                ax.set_title("")
        return self.figure.axes

    def png(self) -> bytes:
        """PNG of the current frame: the fixed layer's pixels, then the moving artists drawn on them."""
        canvas = self.figure.canvas
        canvas.restore_region(self._background)
        for ax in self.figure.axes:
            moving = sorted((a for a in ax.get_children() if a not in self._fixed), key=lambda a: a.get_zorder())
            for artist in moving + [ax.title]:
                self.figure.draw_artist(artist)
        return pixels_png(np.asarray(canvas.buffer_rgba()))


def _one_axes(size: tuple[float, float]):
    """A fixed-layer builder: one axes of ``size`` inches with the suite's margins and square limits."""
    def build(fig):
        fig.set_size_inches(*size)
        ax = fig.add_subplot()
        fit_margins(fig)
        square_axes(ax)
        return ax
    return build


def _legend(ax, color: str) -> None:
    """The legend of the fixed layer: its labelled artists and the generated samples in ``color``."""
    from matplotlib.lines import Line2D

    generated = Line2D([], [], linestyle="none", marker="o", markersize=2.0, markeredgewidth=0, color=color,
                       alpha=0.7, label="generated")
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], generated], loc="upper right", fontsize="small",
              markerscale=3)


def _scatter_layer(size, *layers):
    """A builder for one square axes with background scatters ``(points, style)``."""
    def build(fig):
        ax = _one_axes(size)(fig)
        for points, style in layers:
            points = np.asarray(points)
            ax.scatter(points[:, 0], points[:, 1], **style)
    return build


# ----------------------------------------------------------------------------------------
# Plain draw functions: (Figure, text)

def draw_samples(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                 n_samples: int = 1000, seed: int = 0, data=None, quick: bool = False, canvas: Canvas | None = None):
    """Generate samples from ``base`` with ``method`` in ``n_steps`` steps; plot them over the data.

    Args:
        models: an unconditional model or a dict {base: model}.
        base: a name of ``BASES`` ('gaussian', 'uniform', 'ethz_logo', ...).
        n_steps: solver steps, 1 to MAX_STEPS. method: a name of ``solvers.solver_names()``.
        n_samples, seed: how many samples, drawn from a fixed seed so a redraw is reproducible.
        data: (N, 2) reference points for the background (default: 1000 ring points).
        quick: draw ``quick_count(n_samples)`` samples and skip the exact W2 (while a slider moves).
        canvas: the Canvas to draw on (default: a new figure).

    Returns:
        (figure, text): the plot and one line with the solver cost and the quality figures.
    """
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_STEPS)
    model = pick_model(models, base, kind=None)
    data = background_data()[0] if data is None else data
    solution = generate(model, quick_count(n_samples) if quick else n_samples, base=base, n_steps=n_steps,
                        method=method, seed=seed)
    canvas = canvas or Canvas()

    def build(fig):
        ax = _one_axes((5, 5))(fig)
        _dots(ax, sample_base(base, n_samples, seed=seed).numpy(), 1.8, "lightsteelblue", 0.4, "base $p_0$")
        _dots(ax, np.asarray(data), 1.8, "0.6", 0.4, "data $p_1$")
        _legend(ax, "tab:red")

    (ax,) = canvas.axes(("samples", base, n_samples, seed, id(data)), build)
    _dots(ax, solution.x.numpy(), 2.0, "tab:red", 0.7)
    ax.set_title(f"{base} base, {method}, {_plural(n_steps, 'step')}")
    quality = quick_quality(solution.x) if quick else str(ring_quality(solution.x))
    return canvas.figure, f"{base} base, {method} with {n_steps} steps = {solution.nfe} network evaluations\n{quality}"


def draw_field(models, t: float = 0.5, base: str = "gaussian", kind: str = "quiver", data=None,
               condition=None, n_grid: int = 20, canvas: Canvas | None = None):
    """The learned velocity field at time ``t`` over the base (blue) and data (red) samples.

    Returns (figure, text) with the mean and largest speed on the plotted grid.
    """
    t = check_real("t", t, low=0.0, high=1.0)
    model = pick_model(models, base)
    check_choice("kind", kind, ("quiver", "stream"))
    grid = velocity_on_grid(model, t, condition, n_grid)
    data = background_data()[0] if data is None else data
    canvas = canvas or Canvas()
    build = _scatter_layer((5, 5), (sample_base(base, 1000, seed=1), dict(s=3, color="lightsteelblue", alpha=0.35)),
                           (data, dict(s=3, color="tab:red", alpha=0.25)))
    (ax,) = canvas.axes(("field", base, id(data)), build)
    plot_velocity_field(model, t, ax=ax, kind=kind, condition=condition, n_grid=n_grid, grid=grid,
                        title=f"velocity at t = {t:.2f} ({base} base)")
    speed = np.hypot(grid[2], grid[3])
    return canvas.figure, f"t = {t:.2f}: mean speed on the grid {speed.mean():.2f}, largest {speed.max():.2f}"


def draw_mode(models, mode: int = 0, base: str = "gaussian", n_samples: int = 300, n_steps: int = 100,
              seed: int = 0, data=None, labels=None, quick: bool = False, canvas: Canvas | None = None):
    """Samples of the one-hot model for ``mode`` (left) and its field at t = 0.5 as arrows (right).

    Sampling starts from ``base``, the distribution the chosen model was trained from.
    Returns (figure, text) with the share of samples that land on the requested mode.
    """
    model = pick_model(models, base, kind="onehot")
    mode = check_positive_int("mode", mode, minimum=0, maximum=model.condition_dim - 1)
    code = class_code(mode, model.condition_dim)
    if data is None:
        data, labels = background_data()
    n = quick_count(n_samples) if quick else n_samples
    samples = generate(model, n, base=base, n_steps=n_steps, condition=code, seed=seed).x
    on_mode = requested_mode_fraction(samples, mode)
    canvas = canvas or Canvas()

    def build(fig):
        fig.set_size_inches(9, 4.5)
        left, right = fig.subplots(1, 2)
        points = np.asarray(data)
        colours = [class_color(k) for k in (np.zeros(len(points), int) if labels is None else np.asarray(labels))]
        left.scatter(points[:, 0], points[:, 1], s=4, alpha=0.12, c=colours)
        right.scatter(points[:, 0], points[:, 1], s=3, color="tab:red", alpha=0.25)
        for ax in (left, right):
            square_axes(ax, " ")
        fig.tight_layout()

    left, right = canvas.axes(("mode", id(data)), build)
    plot_conditional_samples_discrete({mode: samples}, ax=left, title=f"mode {mode} from the {base} base",
                                      legend=False)
    plot_velocity_field(model, 0.5, ax=right, condition=code, n_grid=16, title=f"field at t = 0.50 for mode {mode}")
    return canvas.figure, f"mode {mode}: {100 * on_mode:.1f}% of {n} samples land on mode {mode}"


def draw_radius(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 300,
                n_steps: int = 100, seed: int = 0, data=None, quick: bool = False, canvas: Canvas | None = None):
    """Samples of the radius model at ``radius``; radii outside the trained range are flagged.

    Returns (figure, text) with the median distance of the samples from the origin and whether
    the request was an extrapolation.
    """
    model = pick_model(models, base, kind="radius")
    radius = check_real("radius", radius, low=0.0, high=LIMIT, low_open=True)
    with warnings.catch_warnings():            # the picture itself says "extrapolation" in its title
        warnings.simplefilter("ignore", ExtrapolationWarning)
        samples = generate(model, quick_count(n_samples) if quick else n_samples, base=base, n_steps=n_steps,
                           condition=torch.tensor([radius]), seed=seed).x
    low, high = model.trained_radius_range.tolist()
    trained = None if low != low else (low, high)
    data = background_data()[0] if data is None else data
    canvas = canvas or Canvas()
    (ax,) = canvas.axes(("radius", id(data)), _scatter_layer((6, 6), (data, dict(s=3, color="0.7", alpha=0.3))))
    outside = trained is not None and model.is_extrapolation(radius)
    plot_conditional_samples_continuous({radius: samples}, trained_range=trained, ax=ax, legend=False,
                                        title=f"radius {radius:.2f} from the {base} base"
                                              + (" (extrapolation)" if outside else ""))
    if trained is None:
        verdict = "the trained range is unknown"
    elif outside:
        verdict = f"OUTSIDE the trained radii [{low:.2f}, {high:.2f}]: extrapolation, not learned"
    else:
        verdict = f"inside the trained radii [{low:.2f}, {high:.2f}]"
    median = float(samples.norm(dim=1).median())
    return canvas.figure, f"r = {radius:.2f} is {verdict}; median distance of the samples from 0: {median:.2f}"


def _parameter_version(model: nn.Module) -> int:
    """A number that changes whenever an optimiser updates ``model`` in place."""
    return sum(p._version for p in model.parameters())


_FINE_PATHS: OrderedDict = OrderedDict()       # accurate paths already solved, by model, state and start


def _fine_paths(model, x0, conditions):
    """RK4 paths with FINE_STEPS steps from ``x0`` (cached: they depend on neither solver nor NFE)."""
    key = (id(model), _parameter_version(model), x0.numpy().tobytes(),
           None if conditions is None else conditions.numpy().tobytes())
    if key not in _FINE_PATHS:
        _FINE_PATHS[key] = solve_ode(model, x0, n_steps=FINE_STEPS, method="rk4", condition=conditions,
                                     return_trajectory=True).trajectory
        if len(_FINE_PATHS) > 16:
            _FINE_PATHS.popitem(last=False)
    return _FINE_PATHS[key]


def draw_few_step(models: dict, coupling: str, method: str = "euler", nfe: int = 2, n_samples: int = 500,
                  n_paths: int = 40, base: str = "gaussian", seed: int = 0, data=None, quick: bool = False,
                  canvas: Canvas | None = None):
    """Samples (left) and paths (right) of the model trained with ``coupling``, solved in ``nfe``.

    Args:
        models: {coupling name: trained model}, e.g. {"independent": m1, "minibatch OT": m2}.
            One-hot models get class-balanced codes and are drawn in class colours.
        coupling: a key of ``models``. method: a name of ``solvers.solver_names()``.
        nfe: network evaluations allowed: nfe // (evaluations per step) steps, at least one
            (dopri5 chooses its own steps and reports what they cost).
        n_paths: particles whose paths are drawn: grey the accurate path (RK4, FINE_STEPS
            steps), coloured the steps the chosen solver took.
        data: (N, 2) ring points drawn in the background (quality is measured by ``ring_quality``).
        quick: skip the exact W2 (while a slider moves).

    Returns:
        (figure, text): the plot and a line with the cost, W2 against its floor, the off-mode
        share and the straightness of the model's accurate paths.
    """
    coupling = check_choice("coupling", coupling, _coupling_names(models))
    model = models[coupling]
    nfe = check_positive_int("nfe", nfe, maximum=10_000)
    solver = SOLVERS[check_choice("method", method, solver_names())]
    n_steps = nfe if solver.adaptive else max(1, solver.steps_for_budget(nfe))    # dopri5: its own
    n_samples = check_positive_int("n_samples", n_samples, minimum=2, maximum=20_000)
    n_paths = min(check_positive_int("n_paths", n_paths), n_samples)
    data = background_data()[0] if data is None else data
    labels = conditions = None
    if getattr(model, "condition_kind", None) not in (None, "onehot"):
        raise TypeError(f"models must be unconditional or one-hot models, got {type(model).__name__} for {coupling!r}")
    if getattr(model, "condition_kind", None) == "onehot":
        labels = torch.arange(n_samples) % model.condition_dim
        conditions = class_code(labels, model.condition_dim)
    x0 = sample_base(base, n_samples, seed=seed)
    from matplotlib.collections import LineCollection

    coarse = solve_ode(model, x0, n_steps=n_steps, method=method, condition=conditions, return_trajectory=True)
    fine = _fine_paths(model, x0[:n_paths], None if conditions is None else conditions[:n_paths])
    canvas = canvas or Canvas()

    def build(fig):
        fig.set_size_inches(9, 4.5)
        left, right = fig.subplots(1, 2)
        points = np.asarray(data)
        left.scatter(points[:, 0], points[:, 1], s=3, color="0.7", alpha=0.4)
        for ax in (left, right):
            square_axes(ax, " ")
        fig.tight_layout()

    left, right = canvas.axes(("few_step", id(data)), build)
    left.scatter(coarse.x[:, 0].numpy(), coarse.x[:, 1].numpy(), s=4, alpha=0.7,
                 c="tab:red" if labels is None else [class_color(k) for k in labels.tolist()])
    left.set_title(f"{coupling}: {method}, {coarse.nfe} NFE")
    coarse_paths = coarse.trajectory[:, :n_paths].transpose(0, 1).numpy()          # (n_paths, steps + 1, 2)
    colors = "tab:blue" if labels is None else [class_color(k) for k in labels[:n_paths].tolist()]
    right.add_collection(LineCollection(fine.transpose(0, 1).numpy(), colors="0.6", linewidths=0.8))
    right.add_collection(LineCollection(coarse_paths, colors=colors, linewidths=1))
    right.scatter(coarse_paths[..., 0].ravel(), coarse_paths[..., 1].ravel(), s=4, zorder=3,
                  c=colors if labels is None else np.repeat(colors, coarse_paths.shape[1], axis=0))
    right.set_title("accurate path (grey) and the solver's steps")
    quality = quick_quality(coarse.x) if quick else str(ring_quality(coarse.x))
    text = (f"{coupling}: {method}, {_plural(n_steps, 'step')} = {coarse.nfe} NFE | "
            f"straightness of the accurate paths {path_straightness(fine):.3f}\n{quality}")
    return canvas.figure, text


def _coupling_names(models) -> tuple:
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{coupling name: model}}, got {type(models).__name__}")
    return tuple(models)


def draw_guidance(model: nn.Module, guidance_scale: float, label: int = 0, n_samples: int = 400,
                  base: str = "gaussian", n_steps: int = 50, seed: int = 0, data=None, quick: bool = False,
                  canvas: Canvas | None = None):
    """Classifier-free guided samples of class ``label`` at scale w over the data.

    Returns (figure, text) with the share of samples within 3 std of the requested mode.
    """
    n = quick_count(n_samples) if quick else n_samples
    samples = sample_guided(model, label, guidance_scale, n, base, n_steps, seed=seed).x
    data = background_data()[0] if data is None else data
    canvas = canvas or Canvas()
    def build(fig):
        ax = _one_axes((4.5, 4.5))(fig)
        _dots(ax, np.asarray(data), 1.8, "0.6", 0.4, "data $p_1$")
        _legend(ax, class_color(label))

    (ax,) = canvas.axes(("guidance", label, id(data)), build)
    _dots(ax, samples.numpy(), 2.0, class_color(label), 0.7)
    ax.set_title(f"class {label}, w = {guidance_scale:.1f}")
    fraction = requested_mode_fraction(samples, label)
    return canvas.figure, f"w = {guidance_scale:.1f}: {100 * fraction:.0f}% of samples within 3 std of mode {label}"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (> 0)."""
    power = 10.0 ** np.floor(np.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def draw_training(trainer, t: float = 0.5, loss_floor: float | None = None, canvas: Canvas | None = None):
    """One frame of a live training: the loss so far, samples and the field at ``t`` (three panels).

    Args:
        trainer: a ``live_training.LiveTrainer``.
        t: the time of the velocity field drawn on the right, in [0, 1].
        loss_floor: the loss of the exact marginal field for a Gaussian base, random (independent)
            pairs and uniform t (``RingMarginalField().average_loss_floor()``), drawn as a dashed
            line only while the trainer uses that base and coupling: another base or minibatch
            OT has another floor, so there the legend says the line is hidden. None: no line.

    Returns:
        (figure, text): the plot and a line with the step, the recent loss, the speed and the
        off-mode share and per-mode counts of the samples.
    """
    t = check_real("t", t, low=0.0, high=1.0)
    frame = trainer.frame(t)
    losses = np.asarray(frame.losses, dtype=float)
    floor = loss_floor if (trainer.base, trainer.coupling) == ("gaussian", "independent") else None
    x_top = _nice_ceiling(max(100, len(losses)))
    y_top = _nice_ceiling(1.1 * max(float(losses[:20].mean()) if len(losses) else 1.0,
                                    floor or 0.0, 1e-3))
    canvas = canvas or Canvas()

    def build(fig):
        fig.set_size_inches(13, 4.3)
        curve, samples, field = fig.subplots(1, 3)
        curve.set_xlim(0, x_top)
        curve.set_ylim(0, y_top)
        curve.set_xlabel("training step")
        curve.set_ylabel("MSE loss")
        if floor is not None:
            curve.axhline(floor, color="0.3", ls="--", lw=1, label="exact loss (Gaussian base, random pairs)")
        elif loss_floor is not None:
            curve.plot([], [], color="0.3", ls="--", lw=1, label="no exact-loss line for this base/pairing")
        points = np.asarray(trainer.data)
        _dots(samples, points, 1.8, "0.6", 0.4, "data $p_1$")
        _legend(samples, "tab:red")
        field.scatter(points[:, 0], points[:, 1], s=3, color="tab:red", alpha=0.25)
        for ax in (samples, field):
            square_axes(ax, " ")
        fig.tight_layout()

    key = ("training", trainer.base, trainer.coupling, x_top, y_top, floor, id(trainer.data))
    curve, samples, field = canvas.axes(key, build)
    if len(losses):
        plot_loss(losses, ax=curve, window=min(50, len(losses)), title=f"loss after {_plural(len(losses), 'step')}")
    else:
        curve.set_title("loss: press Start")
    _dots(samples, frame.samples, 2.0, "tab:red", 0.7)
    samples.set_title(f"{trainer.preview_steps} Euler steps from fixed noise")
    xx, yy, u, v = frame.field
    field.quiver(xx, yy, u, v, color="tab:blue", alpha=0.8, width=0.004, angles="xy", scale_units="xy", scale=3)
    field.set_title(f"velocity at t = {t:.2f}")
    recent = f"{losses[-50:].mean():.3f}" if len(losses) else "-"
    speed = f", {frame.steps_per_second:.0f} steps/s" if frame.steps_per_second else ""
    text = (f"step {len(losses)} ({trainer.base} base, {trainer.coupling_label}, lr {trainer.lr:g}, batch "
            f"{trainer.batch_size}{speed}) | loss (mean of the last 50) {recent}\n"
            f"samples: off every mode {100 * off_mode_fraction(frame.samples):.1f}% | "
            f"per mode {samples_per_mode(frame.samples).tolist()}")
    return canvas.figure, text


# ----------------------------------------------------------------------------------------
# Explorer: controls + one picture updated in place

class Explorer:
    """Controls wired to a plain draw function, and one picture updated in place.

    ``Explorer(draw, {argument: control}, **arguments)`` starts each control at its argument's
    value, then calls ``draw(**arguments)`` with the controls' current values now and whenever
    a control changes, and shows the picture (an ``ipywidgets.Image``) with the text below it
    (the ``output`` area). A draw function that takes ``canvas`` draws on the explorer's one
    :class:`Canvas`; one that takes ``quick`` is first called with ``quick=True`` when a control
    moves, and again in full once the controls rest for SETTLE_SECONDS (or on ``settle()``).
    A value the draw refuses (ValueError, TypeError) is shown as a message and the last picture
    stays. Full pictures are cached by the control values.

    Attributes:
        controls: {description: widget}, e.g. {"base": Dropdown, "steps": IntSlider}.
        image: the ipywidgets.Image every redraw updates; output: the Output area of the text;
        widget: the VBox to display.
        last_png, last_text, last_error: what the latest redraw produced; n_redraws: how many ran.
    """

    CACHE_SIZE = 32
    SETTLE_SECONDS: float | None = 0.3       # None: a quick picture stays until settle() is called

    def __init__(self, draw: Callable, controls: dict, **arguments):
        import ipywidgets as widgets

        for name, control in controls.items():
            _start(control, name, arguments.pop(name))
        self.draw, self.fixed = draw, arguments
        accepted = inspect.signature(draw).parameters
        self.canvas = Canvas(live=True) if "canvas" in accepted else None
        self._offers_quick = "quick" in accepted
        self.controls = {control.description: control for control in controls.values()}
        self._argument = {control.description: name for name, control in controls.items()}
        self.image = widgets.Image(format="png")
        self.output = widgets.Output(layout=widgets.Layout(min_height="3em"))
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())), self.image, self.output])
        self.last_error, self.n_redraws, self._cache = None, 1, OrderedDict()
        self._lock, self._timer, self._quick_shown, self._settle_canvas = threading.RLock(), None, False, None
        self.last_png, self.last_text = self._picture(quick=False)      # a bad starting value raises here
        self._show(None)
        for control in self.controls.values():
            control.observe(lambda change: self._moved(), names="value")

    def values(self) -> dict:
        """The current value of every control, by description."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> str | None:
        """Set controls by description, as a user would; returns the message shown, if any.

        A value of the wrong type is refused and a value outside a slider's range is clamped
        by ipywidgets; either way the text below the picture says what happened.
        """
        notes = []
        for name, value in values.items():
            if name not in self.controls:
                notes.append(f"unknown control {name!r}; controls: {sorted(self.controls)}")
                continue
            control = self.controls[name]
            try:
                control.value = value
            except Exception as error:                 # traitlets.TraitError and friends
                notes.append(f"{name} = {value!r} refused: {str(error).splitlines()[0]}")
                continue
            if control.value != value:
                notes.append(f"{name} = {value!r} is outside the allowed range; using {control.value!r}")
        self.settle()
        if notes:
            self.redraw(note="; ".join(notes))
        return "; ".join(notes) or None

    def _key(self, quick: bool) -> tuple:
        return (quick,) + tuple(sorted(self.values().items()))

    def _picture(self, quick: bool, canvas: Canvas | None = None) -> tuple[bytes, str]:
        """(PNG, text) for the current values, from the cache or drawn on ``canvas`` (errors propagate)."""
        import matplotlib.pyplot as plt

        key = self._key(quick)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        values = {self._argument[name]: value for name, value in self.values().items()}
        if quick:
            values["quick"] = True
        canvas = canvas or self.canvas
        if canvas is not None:
            _, text = self.draw(**self.fixed, **values, canvas=canvas)
            picture = (canvas.png(), text)
        else:
            fig, text = self.draw(**self.fixed, **values)
            try:
                picture = (figure_png(fig, dpi=fig.dpi), text)
            finally:
                plt.close(fig)
        if not quick and self.CACHE_SIZE:
            with self._lock:
                self._cache[key] = picture
                if len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
        return picture

    def _moved(self) -> None:
        """A control changed (a drag, a click): a quick picture now, the full one when they rest."""
        quick = self._offers_quick and self._key(False) not in self._cache
        self._quick_shown = quick
        self.redraw(quick=quick)
        if not quick:
            self.widget.remove_class("explorer-quick")
        else:
            if self._timer is not None:
                self._timer.cancel()
            if self.SETTLE_SECONDS is not None:
                self._timer = threading.Timer(self.SETTLE_SECONDS, self.settle)
                self._timer.daemon = True
                self._timer.start()

    def settle(self) -> None:
        """Replace a quick picture by the full one (what the timer does once the controls rest).

        The full picture is drawn on a second canvas without holding the explorer, so a control
        moved meanwhile answers at once; a full picture that is out of date when done is dropped.
        """
        if not self._quick_shown:
            return
        values = self.values()
        if self._settle_canvas is None and self.canvas is not None:
            self._settle_canvas = Canvas(live=True)
            self._settle_canvas.figure.set_dpi(self.canvas.figure.dpi)
        try:
            picture, error = self._picture(False, self._settle_canvas), None
        except Exception as problem:                   # shown as redraw() would show it
            picture, error = None, problem
        with self._lock:
            if self.values() != values or not self._quick_shown:
                return                                  # moved meanwhile: a newer picture follows
            self._quick_shown = False
            self.n_redraws += 1
            if error is None:
                (self.last_png, self.last_text), self.last_error = picture, None
            elif isinstance(error, (ValueError, TypeError)):
                self.last_error = f"Refused: {error}"
            else:
                self.last_error = f"Could not draw: {type(error).__name__}: {error}"
            self.widget.remove_class("explorer-quick")
            self._show(None)

    def redraw(self, note: str | None = None, quick: bool = False) -> None:
        """Draw with the current control values (``quick``: the quick picture) and show it."""
        with self._lock:
            self.n_redraws += 1
            try:
                (self.last_png, self.last_text), self.last_error = self._picture(quick), None
            except (ValueError, TypeError) as error:
                self.last_error = f"Refused: {error}"
            except Exception as error:                      # never a traceback below the picture
                self.last_error = f"Could not draw: {type(error).__name__}: {error}"
            if quick:
                self.widget.add_class("explorer-quick")     # a full picture follows (tests wait for it)
            self._show(note)

    def _show(self, note: str | None) -> None:
        if self.image.value != self.last_png:
            self.image.value = self.last_png
        outputs = []
        message = "\n".join(line for line in (note, self.last_error) if line)
        if message:
            outputs.append({"output_type": "stream", "name": "stderr", "text": message + "\n"})
        if not self.last_error:
            outputs.append({"output_type": "stream", "name": "stdout", "text": self.last_text + "\n"})
        self.output.outputs = tuple(outputs)

    def _repr_png_(self) -> bytes:
        """The latest picture, for a static page without a kernel (nbviewer, GitHub)."""
        return self.last_png

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class TrainingExplorer(Explorer):
    """A live training: Start, Pause and Reset, its settings, and ``draw_training`` redrawn as it learns.

    The model trains in a background thread (``live_training.LiveTrainer``), drawing a frame
    every ``frame_seconds``; the kernel stays free for other cells and widgets. Changing the
    base or the coupling starts afresh (the model belongs to one base); the learning rate and
    batch size apply from the next step. ``start()``, ``pause()``, ``reset()`` and
    ``train_steps(n)`` are what the buttons call (tests call them directly).

    Attributes:
        trainer: the LiveTrainer; settings: {description: widget} of base, coupling, lr, batch
        size; buttons: {"Start", "Pause", "Reset"}; model: a copy of the model trained so far.
    """

    CACHE_SIZE = 0                    # each frame shows a newer model

    def __init__(self, trainer, t: float = 0.5, loss_floor: float | None = None, frame_seconds: float = 0.25):
        import ipywidgets as widgets

        self.trainer, self.frame_seconds = trainer, check_real("frame_seconds", frame_seconds, low=0.02, high=10.0)
        super().__init__(draw_training, {"t": slider("t", 0.0, 1.0, 0.05)}, trainer=trainer, t=t,
                         loss_floor=loss_floor)
        self.settings = {"base": dropdown("base", BASES), "coupling": dropdown("coupling", COUPLING_CHOICES.items()),
                         "learning rate": dropdown("learning rate", LEARNING_RATES),
                         "batch size": dropdown("batch size", BATCH_SIZES)}
        for name, value in (("base", trainer.base), ("coupling", trainer.coupling), ("learning rate", trainer.lr),
                            ("batch size", trainer.batch_size)):
            _start(self.settings[name], name, value)
        for control in self.settings.values():
            control.style.description_width = "initial"       # 'learning rate' in full
            control.observe(lambda change: self._configure(), names="value")
        self.buttons = {name: widgets.Button(description=name, icon=icon, layout=widgets.Layout(width="8em"))
                        for name, icon in (("Start", "play"), ("Pause", "pause"), ("Reset", "undo"))}
        for name, action in (("Start", self.start), ("Pause", self.pause), ("Reset", self.reset)):
            self.buttons[name].on_click(lambda button, action=action: action())
        self.status = widgets.Label(value="paused")
        self.widget = widgets.VBox([widgets.HBox([*self.buttons.values(), self.status]),
                                    widgets.HBox(list(self.settings.values())),
                                    widgets.HBox(list(self.controls.values())), self.image, self.output])

    @property
    def model(self) -> nn.Module:
        """A copy of the model as trained so far, in eval mode (training on leaves it as it is)."""
        with self.trainer.lock:
            return copy.deepcopy(self.trainer.model).eval()

    def start(self) -> None:
        """Train in the background, a frame every ``frame_seconds``, until Pause (other trainers pause)."""
        self.trainer.start(on_frame=self._frame, frame_seconds=self.frame_seconds)
        self.status.value = "training"

    def pause(self) -> None:
        """Stop training and keep the model; the picture shows where it stopped."""
        self.trainer.pause()
        self._frame()

    def reset(self) -> None:
        """A fresh model and optimiser with the current settings (training goes on if it was on)."""
        running = self.trainer.running
        self.trainer.pause()
        self.trainer.reset()
        self._frame()
        if running:
            self.start()

    def train_steps(self, n_steps: int) -> None:
        """Train ``n_steps`` steps now, in this thread, then redraw (what tests and scripts call)."""
        self.trainer.step(n_steps)
        self._frame()

    def _frame(self) -> None:
        self.redraw()
        trainer = self.trainer
        self.status.value = (f"training: step {trainer.n_steps}" if trainer.running else
                             f"{trainer.stop_reason or 'paused'} at step {trainer.n_steps}")

    def _configure(self) -> None:
        values = {name: control.value for name, control in self.settings.items()}
        fresh = (values["base"], values["coupling"]) != (self.trainer.base, self.trainer.coupling)
        running = self.trainer.running
        if fresh:
            self.trainer.pause()
        self.trainer.configure(base=values["base"], coupling=values["coupling"], lr=values["learning rate"],
                               batch_size=values["batch size"])
        if fresh:
            self.trainer.reset()
            if running:
                self.start()
        self._frame()


# ----------------------------------------------------------------------------------------
# Controls

def _start(control, argument: str, value) -> None:
    """Set ``control`` to ``value``; a ValueError naming ``argument`` when it would not take it as is."""
    try:
        control.value = value
    except Exception:                                   # traitlets.TraitError: a wrong type
        pass
    if control.value != value:
        allowed = (f"one of {list(getattr(control, '_options_values', control.options))}" if hasattr(control, "options")
                   else f"between {control.min} and {control.max}")
        raise ValueError(f"{argument} must be {allowed}, got {value!r}")


def dropdown(description: str, options):
    """A Dropdown of ``options`` (values, or (label, value) pairs)."""
    import ipywidgets as widgets

    return widgets.Dropdown(options=list(options), description=description)


def slider(description: str, low, high, step=1):
    """An IntSlider (int ``step``) or FloatSlider from ``low`` to ``high`` that redraws while dragged."""
    import ipywidgets as widgets

    kind = widgets.IntSlider if isinstance(step, int) else widgets.FloatSlider
    return kind(min=low, max=high, step=step, description=description, continuous_update=True)


def base_dropdown(models):
    """The bases of ``BASES`` that have a model: all for one model, else the dict's, in registry order."""
    keys = set(models) if isinstance(models, Mapping) else BASES
    return dropdown("base", [name for name in BASES if name in keys])


# ----------------------------------------------------------------------------------------
# Builders: one per explorer

def sample_explorer(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                    n_samples: int = 1000, seed: int = 0, data=None) -> Explorer:
    """Controls 'base', 'steps' (1 to 500) and 'solver' (the fixed-step solvers) redrawing ``draw_samples``."""
    controls = {"base": base_dropdown(models), "n_steps": slider("steps", 1, MAX_STEPS),
                "method": dropdown("solver", solver_names(adaptive=False))}
    return Explorer(draw_samples, controls, models=models, base=base, n_steps=n_steps, method=method,
                    n_samples=n_samples, seed=seed, data=data)


def field_explorer(models, t: float = 0.5, base: str = "gaussian") -> Explorer:
    """Controls 't' (0 to 1) and 'base' redrawing ``draw_field``."""
    return Explorer(draw_field, {"t": slider("t", 0.0, 1.0, 0.05), "base": base_dropdown(models)},
                    models=models, t=t, base=base)


def mode_explorer(models, mode: int = 0, base: str = "gaussian", n_samples: int = 300) -> Explorer:
    """Controls 'mode' (the classes of the one-hot model for ``base``) and 'base' redrawing ``draw_mode``."""
    n_classes = pick_model(models, base, kind="onehot").condition_dim
    return Explorer(draw_mode, {"mode": dropdown("mode", range(n_classes)), "base": base_dropdown(models)},
                    models=models, mode=mode, base=base, n_samples=n_samples)


def radius_explorer(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 300) -> Explorer:
    """Controls 'radius' (0.5 to 5) and 'base' redrawing ``draw_radius``."""
    return Explorer(draw_radius, {"radius": slider("radius", *RADIUS_LIMITS, 0.1), "base": base_dropdown(models)},
                    models=models, radius=radius, base=base, n_samples=n_samples)


def few_step_explorer(models: dict, coupling: str | None = None, method: str = "euler", nfe: int = 2,
                      n_samples: int = 500, seed: int = 0, data=None) -> Explorer:
    """Controls 'coupling' (the keys of ``models``), 'solver' and 'NFE' (1 to 32) redrawing ``draw_few_step``."""
    names = _coupling_names(models)
    controls = {"coupling": dropdown("coupling", names), "method": dropdown("solver", solver_names()),
                "nfe": slider("NFE", 1, MAX_NFE)}
    return Explorer(draw_few_step, controls, models=models, coupling=coupling or names[0], method=method, nfe=nfe,
                    n_samples=n_samples, seed=seed, data=data)


def guidance_explorer(model: nn.Module, label: int = 0, guidance_scale: float = 1.0, **draw_options) -> Explorer:
    """Control 'w' (0 to 8) redrawing ``draw_guidance`` for class ``label`` (``draw_options``: its other arguments)."""
    return Explorer(draw_guidance, {"guidance_scale": slider("w", *GUIDANCE_LIMITS, 0.5)},
                    model=model, label=label, guidance_scale=guidance_scale, **draw_options)


def training_explorer(data=None, base: str = "gaussian", coupling: str = "independent", lr: float = 1e-3,
                      batch_size: int = 256, t: float = 0.5, seed: int = 0, loss_floor: float | None = None,
                      **trainer_options) -> TrainingExplorer:
    """A live training of a fresh ``VelocityField`` on ``data`` (default: 1000 ring points).

    Buttons Start, Pause, Reset; settings 'base' (``BASES``), 'coupling' ('independent',
    'minibatch OT'), 'learning rate' (``LEARNING_RATES``), 'batch size' (``BATCH_SIZES``); slider
    't' for the field. Building one pauses every other live training of the kernel, so
    re-running its cell leaves one trainer. ``explorer.model`` hands the model to the other
    explorers, e.g. ``sample_explorer(explorer.model)``. ``trainer_options`` go to ``LiveTrainer``.
    """
    pause_all()
    data = background_data()[0] if data is None else data
    coupling = COUPLING_CHOICES.get(coupling, coupling)
    trainer = LiveTrainer(data, base=base, coupling=coupling, lr=lr, batch_size=batch_size, seed=seed,
                          **trainer_options)
    return TrainingExplorer(trainer, t=t, loss_floor=loss_floor)
