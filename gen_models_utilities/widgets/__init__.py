"""The notebooks' explorers: drawn by the browser, fed by Python only with what the browser cannot compute.

Each explorer is one anywidget (``explorer.Explorer``) whose front end is the plain ES module
``explorer.js``: a canvas with the data, the particles at time t, their paths and the field's
arrows, and its controls. The browser computes the ring's exact marginal field, its conditional
field per mode, exact classifier-free guidance, and the fixed-step solvers, at any setting; Python
computes a trained network's paths and fields (``views.py``) and stores one view per setting the
widget offers, so a page without a kernel (the book site) shows each of them.

``EXPLORERS`` is the one table of them: the notebooks build them with the builders it names, and
the tests and benchmarks read it (``example``: the call that builds it from the shipped models;
``move``: the control a test moves). A new explorer is one builder in ``builders.py`` and one entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .builders import (few_step_explorer, field_explorer, guidance_explorer, mode_explorer, pick_model,
                       radius_explorer, sample_explorer)
from .explorer import Control, Explorer, ExplorerModule, Layer, shared_module
from .pictures import figure_png, training_figure
from .trainer import TrainingExplorer, training_explorer


@dataclass(frozen=True)
class ExplorerEntry:
    """One explorer: its builder, its job, the call that builds it from the shipped models, the control to move."""

    name: str
    build: Callable
    job: str
    example: str
    move: str


EXPLORERS: dict[str, ExplorerEntry] = {entry.name: entry for entry in (
    ExplorerEntry("samples", sample_explorer, "samples from a base by a fixed-step solver, along their paths",
                  "widgets.sample_explorer(fm_models, base='gaussian', n_steps=100)", "t"),
    ExplorerEntry("field", field_explorer, "the velocity field at any time t",
                  "widgets.field_explorer(fm_models, t=0.5)", "t"),
    ExplorerEntry("few_step", few_step_explorer, "few-step sampling per coupling, against accurate paths",
                  "widgets.few_step_explorer({'independent': fm_models['gaussian'], 'OT, blocks of 128': "
                  "pretrained.load_pretrained('fm_ot_block128')[0]}, nfe=2)", "nfe"),
    ExplorerEntry("modes", mode_explorer, "the one-hot model's samples and field for one mode",
                  "widgets.mode_explorer(onehot_models, mode=0)", "t"),
    ExplorerEntry("radius", radius_explorer, "the radius model at a requested radius, extrapolation marked",
                  "widgets.radius_explorer(radius_models, radius=3.0)", "radius"),
    ExplorerEntry("guidance", guidance_explorer, "classifier-free guidance at weight w, learned and exact",
                  "widgets.guidance_explorer(onehot_models['gaussian'], label=3)", "w"),
    ExplorerEntry("trainer", training_explorer, "a model training live, streaming its samples and field",
                  "widgets.training_explorer(batch_size=256)", "t"),
)}

__all__ = ["EXPLORERS", "Control", "Explorer", "ExplorerEntry", "ExplorerModule", "Layer", "TrainingExplorer",
           "few_step_explorer", "field_explorer", "figure_png", "guidance_explorer", "mode_explorer", "pick_model",
           "radius_explorer", "sample_explorer", "shared_module", "training_explorer", "training_figure"]
