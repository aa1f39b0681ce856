"""The live trainer in the explorer widget: a model trains in the kernel and streams what it does.

Each frame sends the loss so far, the paths of a few Euler steps from fixed noise and the field at
every t of the slider, so the browser scrubs t without asking the kernel. Start, Pause and Reset
are buttons of the front end; base, coupling, learning rate and batch size are its controls.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from .._checks import check_real
from ..base_distributions import BASES
from ..couplings import COUPLINGS
from ..data import create_ring_gaussians
from ..live_training import LIVE_COUPLINGS, LiveTrainer, pause_all
from ..solvers import solve_ode
from .views import fine, grid_arrows, path_view, read_arrow_view
from .builders import ARROW_SCALE, ARROW_SIDE, TIMES, base_spec, data_bytes, time_control
from .explorer import Control, Explorer

LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)
BATCH_SIZES = (64, 128, 256, 512, 1024)
TRACKED = 60                   # preview particles whose Euler steps the browser scrubs through
MAX_LOSS_POINTS = 500          # the loss curve sent: means of equal runs of steps, at most this many


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def training_frame(trainer: LiveTrainer, loss_floor: float | None = None) -> dict:
    """What one frame of a live training shows, as a view for the browser."""
    with trainer.lock, torch.no_grad():
        trajectory = solve_ode(trainer.model, trainer.noise, n_steps=trainer.preview_steps, method="euler",
                               return_trajectory=True).trajectory
        fields = [grid_arrows(trainer.model, t, ARROW_SIDE) for t in TIMES]
        losses = np.asarray(trainer.losses, dtype=np.float64)
        seconds, base, coupling = trainer.seconds, trainer.base, trainer.coupling
        settings = (base, trainer.coupling_label, trainer.lr, trainer.batch_size)
    every = max(1, math.ceil(len(losses) / MAX_LOSS_POINTS))
    curve = losses[:len(losses) // every * every].reshape(-1, every).mean(axis=1) if len(losses) else losses
    floor = loss_floor if (base, coupling) == ("gaussian", "independent") else None
    scale = max(field["scale"] for field in fields)
    uv = np.concatenate([read_arrow_view(field) for field in fields])
    recent = f"{losses[-50:].mean():.3f}" if len(losses) else "-"
    speed = f", {len(losses) / seconds:.0f} steps/s" if seconds > 0 else ""
    return {
        "step": len(losses), "losses": curve.astype("<f4").tobytes(), "loss_every": every,
        "y_top": nice_ceiling(1.1 * max(float(losses[:20].mean()) if len(losses) else 1.0, floor or 0.0, 1e-3)),
        "floor": floor, "floor_note": ("dashed: exact loss (Gaussian base, random pairs)" if floor is not None else
                                       "no exact-loss line for this base/pairing" if loss_floor is not None else ""),
        "x0": fine(trajectory[0]),
        "paths": path_view(trajectory, max_middle=trainer.preview_steps, tracked=TRACKED),
        "fields": {"times": list(TIMES), "scale": scale, "uv": np.rint(uv / scale * 127).astype("i1").tobytes()},
        "preview_steps": trainer.preview_steps,
        "summary": (f"step {len(losses)} ({settings[0]} base, {settings[1]}, lr {settings[2]:g}, batch {settings[3]}"
                    f"{speed}) | loss (mean of the last 50) {recent}"),
    }


class TrainingExplorer(Explorer):
    """A live training: Start, Pause and Reset, its settings, and frames streamed as it learns.

    The model trains in a background thread (``live_training.LiveTrainer``), sending a frame every
    ``frame_seconds``. Changing the base or the coupling starts afresh (the model belongs to one
    base); the learning rate and batch size apply from the next step. ``start()``, ``pause()``,
    ``reset()`` and ``train_steps(n)`` are what the buttons call (tests call them directly).
    """

    def __init__(self, trainer: LiveTrainer, t: float = 0.5, loss_floor: float | None = None,
                 frame_seconds: float = 0.25):
        self.trainer, self.loss_floor = trainer, loss_floor
        self.frame_seconds = check_real("frame_seconds", frame_seconds, low=0.02, high=10.0)
        couplings = tuple(COUPLINGS[key].label for key in LIVE_COUPLINGS)
        controls = [Control("base", "base", tuple(BASES), "select"),
                    Control("coupling", "coupling", tuple(LIVE_COUPLINGS), "select", labels=couplings),
                    Control("lr", "learning rate", LEARNING_RATES, "select",
                            labels=tuple(f"{lr:g}" for lr in LEARNING_RATES)),
                    Control("batch_size", "batch size", BATCH_SIZES, "select"), time_control()]
        settings = dict(base=trainer.base, coupling=trainer.coupling, lr=trainer.lr, batch_size=trainer.batch_size, t=t)
        spec = base_spec("trainer", "trainer", arrows={"side": ARROW_SIDE, "scale": ARROW_SCALE}, n_paths=TRACKED,
                         solve={})
        super().__init__(spec, controls, settings, {"data": data_bytes(trainer.data)}, store=False)
        self.observe(lambda change: self._configure(change["new"]), names="settings")
        self._frame()

    @property
    def model(self) -> nn.Module:
        """A copy of the model as trained so far, in eval mode (training goes on with the original)."""
        with self.trainer.lock:
            return copy.deepcopy(self.trainer.model).eval()

    def start(self) -> None:
        """Train in the background, a frame every ``frame_seconds``, until Pause (other trainers pause)."""
        self.trainer.start(on_frame=self._frame, frame_seconds=self.frame_seconds)
        self.status = "training"

    def pause(self) -> None:
        """Stop training and keep the model; the frame shows where it stopped."""
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
        """Train ``n_steps`` steps now, in this thread, then send a frame (what tests and scripts call)."""
        self.trainer.step(n_steps)
        self._frame()

    def command(self, name: str) -> None:
        actions = {"start": self.start, "pause": self.pause, "reset": self.reset}
        if name in actions:
            actions[name]()

    def _frame(self) -> None:
        self.views = {"frame": training_frame(self.trainer, self.loss_floor)}
        trainer = self.trainer
        self.status = (f"training: step {trainer.n_steps}" if trainer.running else
                       f"{trainer.stop_reason or 'paused'} at step {trainer.n_steps}")

    def _configure(self, settings: dict) -> None:
        trainer = self.trainer
        try:
            for name, control in self.controls.items():
                control.index(settings.get(name))
        except ValueError as error:                        # a front end sent what no control offers
            self.status = f"refused: {error}"
            return
        fresh = (settings["base"], settings["coupling"]) != (trainer.base, trainer.coupling)
        if not fresh and (settings["lr"], settings["batch_size"]) == (trainer.lr, trainer.batch_size):
            return                                         # only t moved: the browser has every t
        running = trainer.running
        if fresh:
            trainer.pause()
        trainer.configure(base=settings["base"], coupling=settings["coupling"], lr=settings["lr"],
                          batch_size=settings["batch_size"])
        if fresh:
            trainer.reset()
            if running:
                self.start()
        self._frame()


def training_explorer(data=None, base: str = "gaussian", coupling: str = "independent", lr: float = 1e-3,
                      batch_size: int = 256, t: float = 0.5, seed: int = 0, loss_floor: float | None = None,
                      **trainer_options) -> TrainingExplorer:
    """A live training of a fresh ``VelocityField`` on ``data`` (default: 1000 ring points).

    Buttons Start, Pause, Reset; controls base (``BASES``), coupling ('independent' or 'minibatch
    OT'), learning rate (``LEARNING_RATES``), batch size (``BATCH_SIZES``) and t. Building one pauses
    every other live training of the kernel, so re-running its cell leaves one trainer.
    ``explorer.model`` hands the model to the other explorers, e.g. ``sample_explorer(explorer.model)``.
    ``trainer_options`` go to ``LiveTrainer``.
    """
    pause_all()
    data = create_ring_gaussians(1000, seed=7)[0] if data is None else data
    labels = {COUPLINGS[key].label: key for key in LIVE_COUPLINGS}
    trainer_options.setdefault("n_preview", 300)
    trainer = LiveTrainer(data, base=base, coupling=labels.get(coupling, coupling), lr=lr, batch_size=batch_size,
                          seed=seed, **trainer_options)
    return TrainingExplorer(trainer, t=t, loss_floor=loss_floor)
