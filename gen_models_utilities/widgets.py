"""Interactive explorers for the chapter notebook, built on ipywidgets.

Two layers, so that tests never need a browser:

* plain draw functions, ``draw_samples``, ``draw_field``, ``draw_mode`` and ``draw_radius``,
  each taking models and settings and returning ``(Figure, text)``. They validate their
  arguments and raise ValueError/TypeError with a readable message.
* builders, ``sample_explorer``, ``field_explorer``, ``mode_explorer`` and ``radius_explorer``,
  each returning an :class:`Explorer`: a few controls wired to one draw function and one
  ``ipywidgets.Output`` area that every redraw replaces in place. A refused value shows its
  message in that area instead of a traceback. Figures are closed after each redraw.

No model is trained here: the explorers draw from models already trained (the shipped
checkpoints in the notebook), so each redraw takes about a second at most.

``models`` arguments accept either one model or a dict ``{base name: model}``; with a dict
the model trained from the chosen base is used, and sampling starts from that base.
"""
from __future__ import annotations

import base64
import io
from collections import OrderedDict
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_real
from .base_distributions import BASE_NAMES, canonical_base_name, sample_base
from .data import create_ring_gaussians
from .metrics import distance_to_nearest_mode, format_quality, ring_quality, w2_floor
from .plotting import (LIMIT, plot_conditional_samples_continuous, plot_conditional_samples_discrete,
                       plot_samples, plot_velocity_field)
from .solvers import FIXED_STEP_METHODS, METHODS, generate

MAX_STEPS = 500                       # the step slider runs from 1 to MAX_STEPS
WIDGET_METHODS = tuple(FIXED_STEP_METHODS)   # 'euler', 'midpoint', 'heun', 'rk4'
RADIUS_LIMITS = (0.5, 5.0)            # the radius slider's range (the ring has radius 3)
FIGURE_DPI = 72


# ----------------------------------------------------------------------------------------
# Small helpers

class PretrainedModels(Mapping):
    """The shipped checkpoints of one kind as a read-only dict {base name: model}.

    ``PretrainedModels("fm")["uniform"]`` is ``checkpoints.load_pretrained("fm_uniform")[0]``,
    loaded on first use and kept, so an explorer loads a base's model only when a student
    picks that base. A checkpoint that is not built raises FileNotFoundError on access,
    which an explorer shows as a message.
    """

    def __init__(self, kind: str):
        self.kind = check_choice("kind", kind, ("fm", "onehot", "radius"))
        self._loaded: dict = {}

    def __getitem__(self, base: str) -> nn.Module:
        from .checkpoints import load_pretrained
        from .recipes import pretrained_name

        if base not in BASE_NAMES:
            raise KeyError(base)
        if base not in self._loaded:
            self._loaded[base] = load_pretrained(pretrained_name(self.kind, base))[0]
        return self._loaded[base]

    def __iter__(self):
        return iter(BASE_NAMES)

    def __len__(self) -> int:
        return len(BASE_NAMES)

    def __repr__(self) -> str:
        return f"PretrainedModels({self.kind!r})"


def pick_model(models, base: str, kind: str | None = None) -> nn.Module:
    """The model for ``base`` from one model or a dict {base name: model}."""
    if isinstance(models, nn.Module):
        model = models
    elif isinstance(models, Mapping):
        if base not in models:
            raise ValueError(f"base must be one of the bases with a model {sorted(models)}, got {base!r}")
        model = models[base]
    else:
        raise TypeError(f"models must be a torch.nn.Module or a dict {{base: model}}, got {type(models).__name__}")
    if kind is not None and getattr(model, "condition_kind", None) != kind:
        raise TypeError(f"expected a model with condition_kind={kind!r}, got {type(model).__name__}")
    return model


def background_data(n_samples: int = 1000, seed: int = 7):
    """Ring points and labels drawn for plot backgrounds: (n, 2) float32, (n,) int64."""
    return create_ring_gaussians(n_samples, seed=seed)


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    """The figure as PNG bytes (no timestamp or version written, so equal figures give equal bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _steps(n_steps) -> int:
    return check_positive_int("n_steps", n_steps, minimum=1, maximum=MAX_STEPS)


# ----------------------------------------------------------------------------------------
# Plain draw functions: (Figure, text)

def draw_samples(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                 n_samples: int = 1000, seed: int = 0, data=None, floor: float | None = None):
    """Generate samples from ``base`` with ``method`` in ``n_steps`` steps; plot them over the data.

    Args:
        models: an unconditional model or a dict {base: model}.
        base: 'gaussian', 'uniform' or 'ethz_logo' ('logo' also accepted).
        n_steps: solver steps, 1 to MAX_STEPS. method: 'euler', 'midpoint', 'heun', 'rk4', 'dopri5'.
        n_samples, seed: how many samples, drawn from a fixed seed so a redraw is reproducible.
        data: (N, 2) reference points for the background and W2 (default: 1000 fresh ring points).
        floor: the data-to-data W2 to report alongside (default: ``w2_floor(len(data))``).

    Returns:
        (figure, text): the plot and one line with the solver cost and the quality figures.
    """
    base = canonical_base_name(base)
    n_steps = _steps(n_steps)
    method = check_choice("method", method, METHODS)
    n_samples = check_positive_int("n_samples", n_samples)
    model = pick_model(models, base, kind=None)
    if getattr(model, "condition_kind", None) is not None:
        raise TypeError(f"draw_samples needs an unconditional model, got {type(model).__name__}")
    reference = background_data()[0] if data is None else data
    floor = w2_floor(len(reference)) if floor is None else floor
    x0 = sample_base(base, n_samples, seed=seed)
    solution = generate(model, n_samples, base=base, n_steps=n_steps, method=method, seed=seed)
    quality = ring_quality(solution.x, reference=reference)
    fig = plot_samples(solution.x, data=reference, base=x0,
                       title=f"{base} base, {method}, {n_steps} step{'s' if n_steps > 1 else ''}")
    text = (f"{base} base, {method} with {n_steps} steps = {solution.nfe} network evaluations\n"
            + format_quality(quality, floor))
    return fig, text


def draw_field(models, t: float = 0.5, base: str = "gaussian", kind: str = "quiver", data=None,
               condition=None, n_grid: int = 20):
    """The learned velocity field at time ``t`` over the base (blue) and data (red) samples.

    Returns (figure, text) with the mean and largest speed on the plotted grid.
    """
    from .plotting import velocity_on_grid

    t = check_real("t", t, low=0.0, high=1.0)
    base = canonical_base_name(base)
    model = pick_model(models, base)
    reference = background_data()[0] if data is None else data
    fig = plot_velocity_field(model, t, kind=kind, condition=condition, data=reference,
                              base=sample_base(base, 1000, seed=1), n_grid=n_grid,
                              title=f"velocity at t = {t:.2f} ({base} base)")
    _, _, u, v = velocity_on_grid(model, t, condition, n_grid)
    speed = np.hypot(u, v)
    text = f"t = {t:.2f}: mean speed on the grid {speed.mean():.2f}, largest {speed.max():.2f}"
    return fig, text


def mode_code(mode: int, n_classes: int) -> torch.Tensor:
    """One-hot code of ``mode``: float32 (n_classes,)."""
    mode = check_positive_int("mode", mode, minimum=0, maximum=n_classes - 1)
    return nn.functional.one_hot(torch.tensor(mode), n_classes).float()


def draw_mode(models, mode: int = 0, base: str = "gaussian", n_samples: int = 300, n_steps: int = 100,
              seed: int = 0, data=None, labels=None):
    """Samples of the one-hot model for ``mode`` (left) and its field at t = 0.5 as arrows (right).

    Sampling starts from ``base``, the distribution the chosen model was trained from.
    Returns (figure, text) with the share of samples that land on the requested mode.
    """
    import matplotlib.pyplot as plt

    base = canonical_base_name(base)
    model = pick_model(models, base, kind="onehot")
    n_classes = model.condition_dim
    code = mode_code(mode, n_classes)
    mode = int(code.argmax())
    n_steps = _steps(n_steps)
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
    text = f"mode {mode}: {100 * on_mode:.1f}% of {n_samples} samples land on mode {mode}"
    return fig, text


def draw_radius(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 300,
                n_steps: int = 100, seed: int = 0, data=None):
    """Samples of the radius model at ``radius``; radii outside the trained range are flagged.

    Returns (figure, text) with the median distance of the samples from the origin and whether
    the request was an extrapolation.
    """
    base = canonical_base_name(base)
    model = pick_model(models, base, kind="radius")
    radius = check_real("radius", radius, low=0.0, high=LIMIT, low_open=True)
    n_steps = _steps(n_steps)
    reference = background_data()[0] if data is None else data
    samples = generate(model, n_samples, base=base, n_steps=n_steps, condition=torch.tensor([radius]),
                       seed=seed).x
    low, high = model.trained_radius_range.tolist()
    trained = None if low != low else (low, high)
    fig = plot_conditional_samples_continuous({radius: samples}, real_data=reference, trained_range=trained,
                                              title=f"radius {radius:.2f} from the {base} base")
    median = float(samples.norm(dim=1).median())
    if trained is None:
        verdict = "the trained range is unknown"
    elif model.is_extrapolation(radius):
        verdict = f"OUTSIDE the trained radii [{low:.2f}, {high:.2f}]: extrapolation, not learned"
    else:
        verdict = f"inside the trained radii [{low:.2f}, {high:.2f}]"
    text = f"r = {radius:.2f} is {verdict}; median distance of the samples from 0: {median:.2f}"
    return fig, text


# ----------------------------------------------------------------------------------------
# Explorers: controls + one Output area

class Explorer:
    """Controls wired to a draw function, and one Output area redrawn in place.

    Attributes:
        controls: {description: widget}, e.g. {"base": Dropdown, "steps": IntSlider}.
        output: the ipywidgets.Output every redraw replaces.
        widget: the VBox to display (displaying the Explorer displays it).
        last_png, last_text, last_error: what the latest redraw produced.
        n_redraws: how many redraws have run.
    """

    def __init__(self, draw: Callable, controls: dict, arguments: Callable[[dict], dict], cache_size: int = 32):
        import ipywidgets as widgets

        self.draw = draw
        self.controls = controls
        self._arguments = arguments
        self.output = widgets.Output(layout=widgets.Layout(min_height="300px"))
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self.output])
        self.last_png: bytes | None = None
        self.last_text = ""
        self.last_error: str | None = None
        self.n_redraws = 0
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        for control in controls.values():
            control.observe(self._on_change, names="value")

    def values(self) -> dict:
        """The current value of every control, by description."""
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, change) -> None:
        self.redraw()

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

    def redraw(self, note: str | None = None) -> None:
        """Draw with the current control values and replace the Output area's content."""
        import matplotlib.pyplot as plt

        self.n_redraws += 1
        values = self.values()
        key = tuple(sorted(values.items()))
        try:
            if key in self._cache:
                png, text = self._cache[key]
                self._cache.move_to_end(key)
            else:
                fig, text = self.draw(**self._arguments(values))
                try:
                    png = figure_png(fig)
                finally:
                    plt.close(fig)
                self._cache[key] = (png, text)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            self.last_png, self.last_text, self.last_error = png, text, None
        except (ValueError, TypeError) as error:
            self.last_error = f"Refused: {error}"
        except Exception as error:                      # never a traceback in the Output area
            self.last_error = f"Could not draw: {type(error).__name__}: {error}"
        shown = "\n".join(line for line in (note, self.last_error) if line)
        self._show(shown)

    def _show(self, note: str) -> None:
        outputs = []
        if self.last_png is not None:
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"image/png": base64.b64encode(self.last_png).decode("ascii"),
                                     "text/plain": "<figure>"}})
        text = self.last_text if not self.last_error else ""
        if note:
            outputs.append({"output_type": "stream", "name": "stderr", "text": note + "\n"})
        if text:
            outputs.append({"output_type": "stream", "name": "stdout", "text": text + "\n"})
        self.output.outputs = tuple(outputs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _base_dropdown(value: str, bases):
    import ipywidgets as widgets

    return widgets.Dropdown(options=list(bases), value=canonical_base_name(value), description="base")


def _available_bases(models) -> tuple:
    return tuple(models) if isinstance(models, Mapping) else BASE_NAMES


def sample_explorer(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                    n_samples: int = 1000, seed: int = 0, data=None, floor: float | None = None) -> Explorer:
    """Controls 'base', 'steps' (1 to 500) and 'solver' redrawing ``draw_samples``.

    ``data`` (N, 2) is the reference for W2 and the background; ``floor`` its data-to-data W2
    (computed when None; pass it if you have it, it costs an optimal transport solve).
    """
    import ipywidgets as widgets

    data = background_data()[0] if data is None else data
    floor = w2_floor(len(data)) if floor is None else check_real("floor", floor, low=0.0, low_open=True)
    controls = {
        "base": _base_dropdown(base, _available_bases(models)),
        "steps": widgets.IntSlider(value=_steps(n_steps), min=1, max=MAX_STEPS, description="steps",
                                   continuous_update=False),
        "solver": widgets.Dropdown(options=list(WIDGET_METHODS), value=check_choice("method", method, WIDGET_METHODS),
                                   description="solver"),
    }
    explorer = Explorer(draw_samples, controls, lambda v: dict(
        models=models, base=v["base"], n_steps=v["steps"], method=v["solver"], n_samples=n_samples,
        seed=seed, data=data, floor=floor))
    explorer.redraw()
    return explorer


def field_explorer(models, t: float = 0.5, base: str = "gaussian") -> Explorer:
    """Controls 't' (0 to 1) and 'base' redrawing ``draw_field``."""
    import ipywidgets as widgets

    data = background_data()[0]
    controls = {
        "t": widgets.FloatSlider(value=check_real("t", t, 0.0, 1.0), min=0.0, max=1.0, step=0.05,
                                 description="t", continuous_update=False, readout_format=".2f"),
        "base": _base_dropdown(base, _available_bases(models)),
    }
    explorer = Explorer(draw_field, controls, lambda v: dict(models=models, t=v["t"], base=v["base"], data=data))
    explorer.redraw()
    return explorer


def mode_explorer(models, mode: int = 0, base: str = "gaussian", n_samples: int = 300) -> Explorer:
    """Controls 'mode' and 'base' redrawing ``draw_mode`` for a one-hot model."""
    import ipywidgets as widgets

    data, labels = background_data()
    first = pick_model(models, canonical_base_name(base), kind="onehot")
    n_classes = first.condition_dim
    controls = {
        "mode": widgets.Dropdown(options=list(range(n_classes)), value=int(mode_code(mode, n_classes).argmax()),
                                 description="mode"),
        "base": _base_dropdown(base, _available_bases(models)),
    }
    explorer = Explorer(draw_mode, controls, lambda v: dict(
        models=models, mode=v["mode"], base=v["base"], n_samples=n_samples, data=data, labels=labels))
    explorer.redraw()
    return explorer


def radius_explorer(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 300) -> Explorer:
    """Controls 'radius' (0.5 to 5) and 'base' redrawing ``draw_radius``."""
    import ipywidgets as widgets

    data = background_data()[0]
    low, high = RADIUS_LIMITS
    controls = {
        "radius": widgets.FloatSlider(value=check_real("radius", radius, low, high), min=low, max=high,
                                      step=0.1, description="radius", continuous_update=False,
                                      readout_format=".2f"),
        "base": _base_dropdown(base, _available_bases(models)),
    }
    explorer = Explorer(draw_radius, controls, lambda v: dict(
        models=models, radius=v["radius"], base=v["base"], n_samples=n_samples, data=data))
    explorer.redraw()
    return explorer
