"""The explorers of the notebooks, one builder each: which controls, what the browser computes exactly,
and which learned views Python computes.

Every builder returns an :class:`~.explorer.Explorer`. The choices come from the registries when an
explorer is built (bases from ``BASES``, solvers from ``SOLVERS``), so a base or solver registered at
run time is offered. ``models`` arguments take one model or a dict {base name: model} (such as
``pretrained.PretrainedModels("fm")``); with a dict, sampling starts from the chosen base with the
model trained from it. ``store=True`` computes every learned view the controls offer, so the notebook
saves them and a page without a kernel shows each; with ``store=False`` they are computed when asked.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import matplotlib.colors
import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ..base_distributions import BASES, sample_base
from ..data import RING_STD, create_ring_gaussians, ring_mode_centers
from ..guidance import GuidedVelocity
from ..metrics import DATA_OFF_MODE
from ..models import ExtrapolationWarning, class_code
from ..plotting import CLASS_COLORS, LIMIT
from ..solvers import SOLVERS, solver_names
from .views import COARSE_SCALE, FINE_SCALE, TRACKED, fine, grid_arrows, on_fine_grid, solved_paths
from .explorer import Control, Explorer, Layer

STEP_CHOICES = (1, 2, 4, 8, 32, 100)                     # the sample explorer's step counts
NFE_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)          # the few-step explorer's budgets
TIMES = tuple(round(0.05 * i, 2) for i in range(21))     # t on the sliders: 0, 0.05, ..., 1
RADII = tuple(0.5 * i for i in range(1, 11))               # 0.5, 1.0, ..., 5.0
GUIDANCE_WEIGHTS = tuple(0.5 * i for i in range(17))       # 0 ... 8
FIELDS = ("learned", "exact")
ARROW_SIDE = 15                # arrows per side of the field explorer's grid
ARROW_SCALE = 0.12             # arrow length in plot units per unit of speed (one scale for every t)
ACCURATE = {"steps": 50, "method": "rk4", "count": 30}     # the few-step explorer's grey reference paths
SIZE = 440                     # canvas side in CSS pixels
N_DATA = 600                   # data points drawn in the background
GAUSSIAN_ONLY = "The exact field is known in closed form for the Gaussian base only:\nchoose the gaussian base"


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


def bases_of(models) -> tuple:
    """The bases of ``BASES`` that have a model: all for one model, else the dict's, in registry order."""
    keys = set(models) if isinstance(models, Mapping) else set(BASES)
    return tuple(name for name in BASES if name in keys)


def ring_spec() -> dict:
    """The ring's geometry for the browser: mode centres, std, the 3-std reach, the data's off-mode share."""
    return {"centers": ring_mode_centers().astype(float).tolist(), "std": RING_STD, "reach": 3 * RING_STD,
            "data_off_mode": DATA_OFF_MODE}


def base_spec(name: str, kind: str, **extra) -> dict:
    """The spec every explorer shares: its EXPLORERS ``name``, its ``kind`` ('paths', 'field', 'trainer'), the ring."""
    return {"name": name, "kind": kind, "ring": ring_spec(), "limit": LIMIT, "size": SIZE, "n_paths": TRACKED,
            "encoding": {"fine": FINE_SCALE, "coarse": COARSE_SCALE},
            "class_colors": [matplotlib.colors.to_hex(color) for color in CLASS_COLORS],
            "evaluations": {name: SOLVERS[name].evaluations for name in solver_names(adaptive=False)}, **extra}


def data_bytes(data=None) -> bytes:
    """The background's data points (default: ring points drawn once) as fine bytes."""
    points = create_ring_gaussians(N_DATA, seed=7)[0] if data is None else np.asarray(data)[:N_DATA]
    return fine(points)


def start_points(bases, n_samples: int, seed: int) -> dict:
    """{base: the particles' start points} on the browser's grid of numbers (on_fine_grid)."""
    return {base: on_fine_grid(sample_base(base, n_samples, seed=seed)) for base in bases}


def time_control(values=TIMES, value_label: str = "t") -> Control:
    return Control("t", value_label, values, labels=tuple(f"{t:.2f}" for t in values))


# ----------------------------------------------------------------------------------------------
# The builders

def sample_explorer(models, base: str = "gaussian", n_steps: int = 100, method: str = "euler",
                    n_samples: int = 100, seed: int = 0, data=None, field: str = "learned", t: float = 1.0,
                    store: bool = True) -> Explorer:
    """Samples from a base by a fixed-step solver: controls field, base, steps, solver and t (along the paths).

    The exact field (browser) exists for the Gaussian base; learned paths (Python) for every base
    with a model, step count in STEP_CHOICES and fixed-step solver.
    """
    bases = bases_of(models)
    n_samples = check_positive_int("n_samples", n_samples, maximum=2000)
    pick_model(models, check_choice("base", base, bases), kind=None)
    starts = start_points(bases, n_samples, seed)
    controls = [Control("field", "field", FIELDS, "select"), Control("base", "base", bases, "select"),
                Control("steps", "steps", STEP_CHOICES), Control("solver", "solver", solver_names(adaptive=False),
                                                                  "select"), time_control()]

    def paths(settings):
        return solved_paths(pick_model(models, settings["base"], kind=None), starts[settings["base"]],
                            settings["steps"], settings["solver"])

    spec = base_spec("samples", "paths", title="{base} base", show_base=True, starts_from="base",
                     solve={"steps_from": "steps", "method_from": "solver"},
                     exact={"field": "ring", "requires": {"base": "gaussian"}, "refusal": GAUSSIAN_ONLY})
    arrays = {"data": data_bytes(data), **{f"x0:{name}": fine(x0) for name, x0 in starts.items()}}
    return Explorer(spec, controls, dict(field=field, base=base, steps=n_steps, solver=method, t=t), arrays,
                    {"paths": Layer(("base", "steps", "solver"), paths)}, store)


def field_explorer(models, t: float = 0.5, base: str = "gaussian", field: str = "learned",
                   store: bool = True) -> Explorer:
    """The velocity field at time t as arrows over base and data: controls field, base and t."""
    bases = bases_of(models)
    pick_model(models, check_choice("base", base, bases))
    controls = [Control("field", "field", FIELDS, "select"), Control("base", "base", bases, "select"), time_control()]

    def arrows(settings):
        return grid_arrows(pick_model(models, settings["base"]), settings["t"], ARROW_SIDE)

    spec = base_spec("field", "field", show_base=True, starts_from="base",
                     arrows={"side": ARROW_SIDE, "scale": ARROW_SCALE},
                     exact={"field": "ring", "requires": {"base": "gaussian"}, "refusal": GAUSSIAN_ONLY})
    backgrounds = start_points(bases, 300, 1)                  # base points drawn behind the arrows
    arrays = {"data": data_bytes(), **{f"x0:{name}": fine(x0) for name, x0 in backgrounds.items()}}
    return Explorer(spec, controls, dict(field=field, base=base, t=t), arrays,
                    {"arrows": Layer(("base", "t"), arrows)}, store)


def mode_explorer(models, mode: int = 0, base: str = "gaussian", n_samples: int = 100, n_steps: int = 100,
                  seed: int = 0, field: str = "learned", t: float = 1.0, store: bool = True) -> Explorer:
    """Samples and field of the one-hot model for one mode: controls field, base, mode and t.

    The exact field is the flow to that mode alone (browser); the learned arrows are stored at
    t = 0, 0.5 and 1 and computed by the kernel for other times.
    """
    bases = bases_of(models)
    n_classes = pick_model(models, check_choice("base", base, bases), kind="onehot").condition_dim
    starts = start_points(bases, check_positive_int("n_samples", n_samples, maximum=2000), seed)
    n_steps = check_positive_int("n_steps", n_steps, maximum=500)
    controls = [Control("field", "field", FIELDS, "select"), Control("base", "base", bases, "select"),
                Control("mode", "mode", tuple(range(n_classes)), "select"), time_control()]

    def code(settings):
        return class_code(settings["mode"], n_classes)

    def paths(settings):
        model = pick_model(models, settings["base"], kind="onehot")
        return solved_paths(model, starts[settings["base"]], n_steps, "euler", condition=code(settings))

    def arrows(settings):
        model = pick_model(models, settings["base"], kind="onehot")
        return grid_arrows(model, settings["t"], 12, condition=code(settings))

    spec = base_spec("modes", "paths", title="mode {mode} from the {base} base", starts_from="base", color_from="mode",
                     solve={"steps": n_steps, "method": "euler"},
                     arrows={"side": 12, "scale": ARROW_SCALE, "color": "#555555"},       # the modes wear the colours
                     exact={"field": "mode", "mode_from": "mode", "requires": {"base": "gaussian"},
                            "refusal": GAUSSIAN_ONLY})
    arrays = {"data": data_bytes(), **{f"x0:{name}": fine(x0) for name, x0 in starts.items()}}
    layers = {"paths": Layer(("base", "mode"), paths),
              "arrows": Layer(("base", "mode", "t"), arrows, stored={"t": (0.0, 0.5, 1.0)})}
    return Explorer(spec, controls, dict(field=field, base=base, mode=mode, t=t), arrays, layers, store)


def radius_explorer(models, radius: float = 3.0, base: str = "gaussian", n_samples: int = 100,
                    n_steps: int = 100, seed: int = 0, t: float = 1.0, store: bool = True) -> Explorer:
    """Samples of the radius model at a requested radius: controls base, radius (0.5 to 5) and t.

    The page marks the radii the model was trained on (``trained_radius_range``); outside it the
    samples are extrapolation.
    """
    bases = bases_of(models)
    pick_model(models, check_choice("base", base, bases), kind="radius")
    starts = start_points(bases, check_positive_int("n_samples", n_samples, maximum=2000), seed)
    n_steps = check_positive_int("n_steps", n_steps, maximum=500)
    controls = [Control("base", "base", bases, "select"), Control("radius", "radius", RADII), time_control()]

    def paths(settings):
        model = pick_model(models, settings["base"], kind="radius")
        condition = torch.full((len(starts[settings["base"]]), 1), float(settings["radius"]))
        with warnings.catch_warnings():            # the widget marks the trained range itself
            warnings.simplefilter("ignore", ExtrapolationWarning)
            return solved_paths(model, starts[settings["base"]], n_steps, "euler", condition=condition)

    trained = {}
    for name in bases:
        low, high = pick_model(models, name, kind="radius").trained_radius_range.tolist()
        trained[name] = None if low != low else [low, high]
    spec = base_spec("radius", "paths", title="radius {radius} from the {base} base", starts_from="base",
                     solve={"steps": n_steps, "method": "euler"}, radius={"trained": trained}, color="#9467bd")
    arrays = {"data": data_bytes(), **{f"x0:{name}": fine(x0) for name, x0 in starts.items()}}
    return Explorer(spec, controls, dict(base=base, radius=radius, t=t), arrays,
                    {"paths": Layer(("base", "radius"), paths)}, store)


def few_step_explorer(models: dict, coupling: str | None = None, method: str = "euler", nfe: int = 2,
                      n_samples: int = 150, seed: int = 0, data=None, exact_for: str | None = "independent",
                      field: str = "learned", t: float = 1.0, store: bool = True) -> Explorer:
    """Few-step sampling per coupling: controls field, coupling (the keys of ``models``), solver, NFE and t.

    A solver takes NFE // (evaluations per step) steps, at least one. Grey: accurate paths (RK4,
    50 steps) of the first particles. The exact field is that of independent pairs from the
    Gaussian base, shown for the coupling named ``exact_for`` (a key of ``models``, or None).
    """
    if not isinstance(models, dict) or not models:
        raise TypeError(f"models must be a non-empty dict {{coupling name: model}}, got {type(models).__name__}")
    names = tuple(models)
    for name in names:
        pick_model(models, name, kind=None)
    coupling = check_choice("coupling", coupling or names[0], names)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2, maximum=2000)
    x0 = start_points(["gaussian"], n_samples, seed)["gaussian"]
    controls = [Control("coupling", "coupling", names, "select"),
                Control("solver", "solver", solver_names(adaptive=False), "select"),
                Control("nfe", "NFE", NFE_CHOICES), time_control()]
    exact = None
    if exact_for is not None and exact_for in names:
        controls.insert(0, Control("field", "field", FIELDS, "select"))
        exact = {"field": "ring", "requires": {"coupling": exact_for},
                 "refusal": f"The exact field is known for independent pairs\n(the coupling {exact_for!r}) only"}

    def steps(settings):
        return max(1, settings["nfe"] // SOLVERS[settings["solver"]].evaluations)

    def paths(settings):
        return solved_paths(models[settings["coupling"]], x0, steps(settings), settings["solver"],
                            max_middle=max(NFE_CHOICES) - 1, tracked=ACCURATE["count"])      # every step

    def accurate(settings):
        return solved_paths(models[settings["coupling"]], x0[:ACCURATE["count"]], ACCURATE["steps"],
                            ACCURATE["method"], max_middle=ACCURATE["steps"] - 1, tracked=ACCURATE["count"])

    spec = base_spec("few_step", "paths", title="{coupling}", solve={"nfe_from": "nfe", "method_from": "solver"},
                     accurate=ACCURATE, exact=exact, n_paths=ACCURATE["count"])
    settings = dict(coupling=coupling, solver=method, nfe=nfe, t=t, **({"field": field} if exact else {}))
    layers = {"paths": Layer(("coupling", "solver", "nfe"), paths,
                             canonical=lambda s: (s["coupling"], s["solver"], steps(s))),
              "accurate": Layer(("coupling",), accurate)}
    return Explorer(spec, controls, settings, {"data": data_bytes(data), "x0:all": fine(x0)}, layers, store)


def guidance_explorer(model: nn.Module, label: int = 0, guidance_scale: float = 1.0, n_samples: int = 150,
                      n_steps: int = 50, seed: int = 0, data=None, field: str = "learned", t: float = 1.0,
                      store: bool = True) -> Explorer:
    """Classifier-free guidance v_u + w (v_c - v_u): controls field, class, w (0 to 8) and t.

    Learned: the one-hot ``model`` trained with condition dropout (Python). Exact: the ring's field
    and the chosen mode's field (browser). Euler, ``n_steps`` steps, from the Gaussian base.
    """
    n_classes = pick_model(model, "gaussian", kind="onehot").condition_dim
    x0 = start_points(["gaussian"], check_positive_int("n_samples", n_samples, maximum=2000), seed)["gaussian"]
    n_steps = check_positive_int("n_steps", n_steps, maximum=500)
    controls = [Control("field", "field", FIELDS, "select"),
                Control("class", "class", tuple(range(n_classes)), "select"),
                Control("w", "w", GUIDANCE_WEIGHTS, labels=tuple(f"{w:.1f}" for w in GUIDANCE_WEIGHTS)), time_control()]

    def paths(settings):
        guided = GuidedVelocity(model, class_code(settings["class"], n_classes), settings["w"])
        return solved_paths(guided, x0, n_steps, "euler")

    spec = base_spec("guidance", "paths", title="class {class}, w = {w}", color_from="class", show_radius=True,
                     solve={"steps": n_steps, "method": "euler"},
                     exact={"field": "guided", "mode_from": "class", "w_from": "w"})
    return Explorer(spec, controls, {"field": field, "class": label, "w": guidance_scale, "t": t},
                    {"data": data_bytes(data), "x0:all": fine(x0)},
                    {"paths": Layer(("class", "w"), paths)}, store)
