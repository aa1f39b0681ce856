"""Every interactive explorer of the suite, built one way on ipywidgets.

Two layers, so that tests never need a browser:

* plain draw functions (``draw_samples``, ``draw_field``, ``draw_mode``, ``draw_radius``,
  ``draw_few_step``, ``draw_guidance``), each taking models and settings, checking them and
  returning ``(Figure, text)``.
* builders (``sample_explorer``, ``field_explorer``, ``mode_explorer``, ``radius_explorer``,
  ``few_step_explorer``, ``guidance_explorer``), each returning an :class:`Explorer`: a few
  controls wired to one draw function and one Output area redrawn in place.

A new explorer is one draw function and one builder here, plus its test. The choices come
from the registries when an explorer is built: bases from ``base_distributions.BASES``,
solvers from ``solvers.SOLVERS``, so a base or solver registered at run time is offered.
``models`` arguments take one model or a dict {base name: model} (such as
``checkpoints.PretrainedModels("fm")``); with a dict, sampling starts from the chosen base with
the model trained from it.
"""
from __future__ import annotations

import base64
import functools
import io
from collections import OrderedDict
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_real
from .base_distributions import BASES, sample_base
from .data import create_ring_gaussians
from .guidance import requested_mode_fraction, sample_guided
from .metrics import distance_to_nearest_mode, path_straightness, ring_quality
from .plotting import (LIMIT, class_color, new_axes, plot_conditional_samples_continuous,
                       plot_conditional_samples_discrete, plot_samples, plot_velocity_field, square_axes,
                       velocity_on_grid)
from .solvers import SOLVERS, generate, solve_ode, solver_names

MAX_STEPS = 500                  # the step slider runs from 1 to MAX_STEPS
MAX_NFE = 32                     # the NFE slider runs from 1 to MAX_NFE
RADIUS_LIMITS = (0.5, 5.0)       # the radius slider's range (the ring has radius 3)
GUIDANCE_LIMITS = (0.0, 8.0)     # the w slider's range
FINE_STEPS = 50                  # RK4 steps of the accurate paths drawn in grey by draw_few_step
FIGURE_DPI = 72


# ----------------------------------------------------------------------------------------
# Small helpers

def pick_model(models, base: str, kind: str | None = "any") -> nn.Module:
    """The model for ``base`` from one model or a dict {base name: model}; ``kind`` its condition_kind."""
    if isinstance(models, Mapping):
        if base not in set(models):                  # set(): a lazy dict loads nothing to answer
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


def mode_code(mode: int, n_classes: int) -> torch.Tensor:
    """One-hot code of ``mode``: float32 (n_classes,)."""
    mode = check_positive_int("mode", mode, minimum=0, maximum=n_classes - 1)
    return nn.functional.one_hot(torch.tensor(mode), n_classes).float()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ----------------------------------------------------------------------------------------
# Plain draw functions: (Figure, text)

def draw_samples(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                 n_samples: int = 1000, seed: int = 0, data=None):
    """Generate samples from ``base`` with ``method`` in ``n_steps`` steps; plot them over the data.

    Args:
        models: an unconditional model or a dict {base: model}.
        base: a name of ``BASES`` ('gaussian', 'uniform', 'ethz_logo', ...).
        n_steps: solver steps, 1 to MAX_STEPS. method: a name of ``solvers.solver_names()``.
        n_samples, seed: how many samples, drawn from a fixed seed so a redraw is reproducible.
        data: (N, 2) reference points for the background and W2 (default: 1000 ring points).

    Returns:
        (figure, text): the plot and one line with the solver cost and the quality figures.
    """
    n_steps = check_positive_int("n_steps", n_steps, maximum=MAX_STEPS)
    model = pick_model(models, base, kind=None)
    data = background_data()[0] if data is None else data
    solution = generate(model, n_samples, base=base, n_steps=n_steps, method=method, seed=seed)
    fig = plot_samples(solution.x, data=data, base=sample_base(base, n_samples, seed=seed),
                       title=f"{base} base, {method}, {_plural(n_steps, 'step')}")
    text = (f"{base} base, {method} with {n_steps} steps = {solution.nfe} network evaluations\n"
            + str(ring_quality(solution.x)))
    return fig, text


def draw_field(models, t: float = 0.5, base: str = "gaussian", kind: str = "quiver", data=None,
               condition=None, n_grid: int = 20):
    """The learned velocity field at time ``t`` over the base (blue) and data (red) samples.

    Returns (figure, text) with the mean and largest speed on the plotted grid.
    """
    t = check_real("t", t, low=0.0, high=1.0)
    model = pick_model(models, base)
    fig = plot_velocity_field(model, t, kind=kind, condition=condition, n_grid=n_grid,
                              data=background_data()[0] if data is None else data,
                              base=sample_base(base, 1000, seed=1), title=f"velocity at t = {t:.2f} ({base} base)")
    _, _, u, v = velocity_on_grid(model, t, condition, n_grid)
    speed = np.hypot(u, v)
    return fig, f"t = {t:.2f}: mean speed on the grid {speed.mean():.2f}, largest {speed.max():.2f}"


def draw_mode(models, mode: int = 0, base: str = "gaussian", n_samples: int = 300, n_steps: int = 100,
              seed: int = 0, data=None, labels=None):
    """Samples of the one-hot model for ``mode`` (left) and its field at t = 0.5 as arrows (right).

    Sampling starts from ``base``, the distribution the chosen model was trained from.
    Returns (figure, text) with the share of samples that land on the requested mode.
    """
    import matplotlib.pyplot as plt

    model = pick_model(models, base, kind="onehot")
    code = mode_code(mode, model.condition_dim)
    if data is None:
        data, labels = background_data()
    samples = generate(model, n_samples, base=base, n_steps=n_steps, condition=code, seed=seed).x
    distance, nearest = distance_to_nearest_mode(samples)
    on_mode = float(np.mean((nearest == mode) & (distance <= 0.75)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.5))
    plot_conditional_samples_discrete({mode: samples}, real_data=data, real_labels=labels, ax=left,
                                      title=f"mode {mode} from the {base} base")
    plot_velocity_field(model, 0.5, ax=right, condition=code, data=data, n_grid=16,
                        title=f"field at t = 0.50 for mode {mode}")
    fig.tight_layout()
    return fig, f"mode {mode}: {100 * on_mode:.1f}% of {n_samples} samples land on mode {mode}"


def draw_radius(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 300,
                n_steps: int = 100, seed: int = 0, data=None):
    """Samples of the radius model at ``radius``; radii outside the trained range are flagged.

    Returns (figure, text) with the median distance of the samples from the origin and whether
    the request was an extrapolation.
    """
    model = pick_model(models, base, kind="radius")
    radius = check_real("radius", radius, low=0.0, high=LIMIT, low_open=True)
    samples = generate(model, n_samples, base=base, n_steps=n_steps, condition=torch.tensor([radius]),
                       seed=seed).x
    low, high = model.trained_radius_range.tolist()
    trained = None if low != low else (low, high)
    fig = plot_conditional_samples_continuous({radius: samples}, trained_range=trained,
                                              real_data=background_data()[0] if data is None else data,
                                              title=f"radius {radius:.2f} from the {base} base")
    if trained is None:
        verdict = "the trained range is unknown"
    elif model.is_extrapolation(radius):
        verdict = f"OUTSIDE the trained radii [{low:.2f}, {high:.2f}]: extrapolation, not learned"
    else:
        verdict = f"inside the trained radii [{low:.2f}, {high:.2f}]"
    median = float(samples.norm(dim=1).median())
    return fig, f"r = {radius:.2f} is {verdict}; median distance of the samples from 0: {median:.2f}"


def draw_few_step(models: dict, coupling: str, method: str = "euler", nfe: int = 2, n_samples: int = 500,
                  n_paths: int = 40, base: str = "gaussian", seed: int = 0, data=None):
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

    Returns:
        (figure, text): the plot and a line with the cost, W2 against its floor, the off-mode
        share and the straightness of the model's accurate paths.
    """
    import matplotlib.pyplot as plt

    coupling = check_choice("coupling", coupling, _coupling_names(models))
    model = models[coupling]
    nfe = check_positive_int("nfe", nfe, maximum=10_000)
    n_steps = max(1, nfe // SOLVERS[method].evaluations) if method in SOLVERS else nfe    # dopri5: its own
    n_samples = check_positive_int("n_samples", n_samples, minimum=2, maximum=20_000)
    n_paths = min(check_positive_int("n_paths", n_paths), n_samples)
    data = background_data()[0] if data is None else data
    labels = conditions = None
    if getattr(model, "condition_kind", None) not in (None, "onehot"):
        raise TypeError(f"models must be unconditional or one-hot models, got {type(model).__name__} for {coupling!r}")
    if getattr(model, "condition_kind", None) == "onehot":
        labels = torch.arange(n_samples) % model.condition_dim
        conditions = nn.functional.one_hot(labels, model.condition_dim).float()
    x0 = sample_base(base, n_samples, seed=seed)
    coarse = solve_ode(model, x0, n_steps=n_steps, method=method, condition=conditions, return_trajectory=True)
    fine = solve_ode(model, x0[:n_paths], n_steps=FINE_STEPS, method="rk4",
                     condition=None if conditions is None else conditions[:n_paths], return_trajectory=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.5))
    left.scatter(data[:, 0], data[:, 1], s=3, color="0.7", alpha=0.4)
    left.scatter(coarse.x[:, 0].numpy(), coarse.x[:, 1].numpy(), s=4, alpha=0.7,
                 c="tab:red" if labels is None else [class_color(k) for k in labels.tolist()])
    square_axes(left, f"{coupling}: {method}, {coarse.nfe} NFE")
    fine_paths, coarse_paths = fine.trajectory.numpy(), coarse.trajectory[:, :n_paths].numpy()
    right.plot(fine_paths[:, :, 0], fine_paths[:, :, 1], color="0.6", lw=0.8)
    for i in range(n_paths):
        color = "tab:blue" if labels is None else class_color(int(labels[i]))
        right.plot(coarse_paths[:, i, 0], coarse_paths[:, i, 1], "-o", color=color, lw=1, ms=2)
    square_axes(right, "accurate path (grey) and the solver's steps")
    fig.tight_layout()
    text = (f"{coupling}: {method}, {_plural(n_steps, 'step')} = {coarse.nfe} NFE | "
            f"straightness of the accurate paths {path_straightness(fine.trajectory):.3f}\n"
            + str(ring_quality(coarse.x)))
    return fig, text


def _coupling_names(models) -> tuple:
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{coupling name: model}}, got {type(models).__name__}")
    return tuple(models)


def draw_guidance(model: nn.Module, guidance_scale: float, label: int = 0, n_samples: int = 400,
                  base: str = "gaussian", n_steps: int = 50, seed: int = 0, data=None):
    """Classifier-free guided samples of class ``label`` at scale w over the data.

    Returns (figure, text) with the share of samples within 3 std of the requested mode.
    """
    samples = sample_guided(model, label, guidance_scale, n_samples, base, n_steps, seed=seed).x
    fig, ax = new_axes(None, 4.5)
    plot_samples(samples, data=background_data()[0] if data is None else data, ax=ax, color=class_color(label),
                 title=f"class {label}, w = {guidance_scale:.1f}")
    fraction = requested_mode_fraction(samples, label)
    return fig, f"w = {guidance_scale:.1f}: {100 * fraction:.0f}% of samples within 3 std of mode {label}"


# ----------------------------------------------------------------------------------------
# Explorer: controls + one Output area

class Explorer:
    """Controls wired to a plain draw function, and one Output area redrawn in place.

    ``Explorer(draw, {argument: control}, **arguments)`` starts each control at its argument's
    value, then calls ``draw(**arguments)`` with the controls' current values now and whenever
    a control changes. It shows the figure as a PNG with the text below and closes the figure.
    A value the draw refuses (ValueError, TypeError) is shown as a message and the last picture
    stays. Pictures are cached by the control values.

    Attributes:
        controls: {description: widget}, e.g. {"base": Dropdown, "steps": IntSlider}.
        output: the ipywidgets.Output every redraw replaces; widget: the VBox to display.
        last_png, last_text, last_error: what the latest redraw produced; n_redraws: how many ran.
    """

    CACHE_SIZE = 32

    def __init__(self, draw: Callable, controls: dict, **arguments):
        import ipywidgets as widgets

        for name, control in controls.items():
            _start(control, name, arguments.pop(name))
        self.draw, self.fixed = draw, arguments
        self.controls = {control.description: control for control in controls.values()}
        self._argument = {control.description: name for name, control in controls.items()}
        self.output = widgets.Output(layout=widgets.Layout(min_height="300px"))
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())), self.output])
        self.last_error, self.n_redraws, self._cache = None, 1, OrderedDict()
        self.last_png, self.last_text = self._picture()            # a bad starting value raises here
        self._show(None)
        for control in self.controls.values():
            control.observe(lambda change: self.redraw(), names="value")

    def values(self) -> dict:
        """The current value of every control, by description."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> str | None:
        """Set controls by description, as a user would; returns the message shown, if any.

        A value of the wrong type is refused and a value outside a slider's range is clamped
        by ipywidgets; either way the Output area says what happened.
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
        if notes:
            self.redraw(note="; ".join(notes))
        return "; ".join(notes) or None

    def _picture(self) -> tuple[bytes, str]:
        """(PNG, text) for the current values, from the cache or drawn (errors propagate)."""
        import matplotlib.pyplot as plt

        values = self.values()
        key = tuple(sorted(values.items()))
        if key not in self._cache:
            fig, text = self.draw(**self.fixed, **{self._argument[name]: value for name, value in values.items()})
            try:
                self._cache[key] = (figure_png(fig), text)
            finally:
                plt.close(fig)
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key]

    def redraw(self, note: str | None = None) -> None:
        """Draw with the current control values and replace the Output area's content."""
        self.n_redraws += 1
        try:
            (self.last_png, self.last_text), self.last_error = self._picture(), None
        except (ValueError, TypeError) as error:
            self.last_error = f"Refused: {error}"
        except Exception as error:                      # never a traceback in the Output area
            self.last_error = f"Could not draw: {type(error).__name__}: {error}"
        self._show(note)

    def _show(self, note: str | None) -> None:
        outputs = [{"output_type": "display_data", "metadata": {},
                    "data": {"image/png": base64.b64encode(self.last_png).decode("ascii"), "text/plain": "<figure>"}}]
        message = "\n".join(line for line in (note, self.last_error) if line)
        if message:
            outputs.append({"output_type": "stream", "name": "stderr", "text": message + "\n"})
        if not self.last_error:
            outputs.append({"output_type": "stream", "name": "stdout", "text": self.last_text + "\n"})
        self.output.outputs = tuple(outputs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ----------------------------------------------------------------------------------------
# Controls

def _start(control, argument: str, value) -> None:
    """Set ``control`` to ``value``; a ValueError naming ``argument`` when it would not take it as is."""
    try:
        control.value = value
    except Exception:                                   # traitlets.TraitError: a wrong type
        pass
    if control.value != value:
        allowed = (f"one of {list(control.options)}" if hasattr(control, "options")
                   else f"between {control.min} and {control.max}")
        raise ValueError(f"{argument} must be {allowed}, got {value!r}")


def dropdown(description: str, options):
    """A Dropdown of ``options``."""
    import ipywidgets as widgets

    return widgets.Dropdown(options=list(options), description=description)


def slider(description: str, low, high, step=1):
    """An IntSlider (int ``step``) or FloatSlider from ``low`` to ``high`` that redraws on release."""
    import ipywidgets as widgets

    kind = widgets.IntSlider if isinstance(step, int) else widgets.FloatSlider
    return kind(min=low, max=high, step=step, description=description, continuous_update=False)


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
                "method": dropdown("solver", SOLVERS)}
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
