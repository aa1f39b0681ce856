"""Training a velocity model step by step, in the background, so that a class can watch it learn.

``LiveTrainer`` holds a model, its optimiser and the chapter's step (``training.training_step``
on ``training.flow_matching_batch_loss``: loss, ``loss.backward()``, AdamW's update). ``step(n)``
runs n steps now; ``start()`` runs them in a background thread until ``pause()``, calling
``on_frame()`` every ``frame_seconds``; ``reset()`` starts afresh; ``frame(t)`` is what a picture
needs (losses, samples from a few Euler steps from fixed noise, the field at t).

At most one trainer trains at a time in a process: ``start()`` pauses the others, building a
``widgets.training_explorer`` pauses them all (so re-running its cell leaves one), and in a
Jupyter kernel, interrupting the kernel pauses them all.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import MAX_SEED, MAX_TRAIN_STEPS, _short, as_points, check_choice, check_positive_int, check_real
from .base_distributions import get_base, sample_base
from .couplings import COUPLINGS, get_coupling
from .loaders import RandomBatches
from .models import VelocityField
from .plotting import velocity_on_grid
from .solvers import solve_ode
from .training import flow_matching_batch_loss, make_optimizer, training_step

LIVE_COUPLINGS = ("independent", "ot")     # the couplings a live training offers (keys of COUPLINGS)
MAX_LIVE_STEPS = 20_000         # a forgotten trainer stops here instead of using the CPU all lecture
STEPS_PER_CHUNK = 5             # steps between two looks at the clock and the pause flag

_TRAINERS: weakref.WeakSet = weakref.WeakSet()
_HOOKED = False


@dataclass
class Frame:
    """What one picture of a training shows: losses (list), samples (n, 2), field (xx, yy, u, v)."""

    losses: list
    samples: np.ndarray
    field: tuple
    steps_per_second: float | None


class LiveTrainer:
    """A ``VelocityField`` trained by flow matching from ``base`` to ``data``, step by step.

    Args:
        data: (N, 2) points. base: a name of ``BASES``. coupling: a key of ``couplings.COUPLINGS``
            ('independent', 'ot'). lr, batch_size: AdamW's rate and the batch (change them any time
            with ``configure``). seed: seeds the model, the batches and the fixed noise.
        n_preview, preview_steps: samples drawn for the picture, by that many Euler steps.
        n_grid: the field's grid side. max_steps: training stops by itself there.
    """

    def __init__(self, data, base: str = "gaussian", coupling: str = "independent", lr: float = 1e-3,
                 batch_size: int = 256, seed: int = 0, n_preview: int = 500, preview_steps: int = 8,
                 n_grid: int = 15, max_steps: int = MAX_LIVE_STEPS):
        self.data = as_points("data", data).detach().cpu().float()
        self.seed = check_positive_int("seed", seed, minimum=0, maximum=MAX_SEED - 1)      # seed + 1: the noise
        self.n_preview = check_positive_int("n_preview", n_preview, maximum=10_000)
        self.preview_steps = check_positive_int("preview_steps", preview_steps, maximum=100)
        self.n_grid = check_positive_int("n_grid", n_grid, minimum=2, maximum=50)
        self.max_steps = check_positive_int("max_steps", max_steps, maximum=MAX_TRAIN_STEPS)
        self.lock = threading.RLock()
        self._thread, self._stop = None, threading.Event()
        self.stop_reason = None
        self.configure(base=base, coupling=coupling, lr=lr, batch_size=batch_size)
        self.reset()
        _TRAINERS.add(self)
        _install_interrupt_hook()

    @property
    def coupling_label(self) -> str:
        return COUPLINGS[self.coupling].label

    @property
    def n_steps(self) -> int:
        return len(self.losses)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def configure(self, base: str | None = None, coupling: str | None = None, lr: float | None = None,
                  batch_size: int | None = None) -> None:
        """Change settings: lr and batch_size apply from the next step, base and coupling after ``reset()``."""
        with self.lock:
            if base is not None:
                self.base = get_base(base).name
            if coupling is not None:
                self.coupling = check_choice("coupling", coupling, tuple(COUPLINGS))
            if lr is not None:
                self.lr = check_real("lr", lr, low=0.0, high=1.0, low_open=True)
                for group in self.optimizer.param_groups if hasattr(self, "optimizer") else ():
                    group["lr"] = self.lr
            if batch_size is not None:
                self.batch_size = check_positive_int("batch_size", batch_size, maximum=100_000)
                if hasattr(self, "model"):
                    self._new_batches()

    def reset(self) -> None:
        """A fresh model and optimiser (seeded), no losses, new fixed noise for the base."""
        with self.lock:
            with torch.random.fork_rng():            # seeded without touching the global generator
                torch.manual_seed(self.seed)
                self.model = VelocityField()
            self.optimizer = make_optimizer(self.model, self.lr)
            self.generator = torch.Generator().manual_seed(self.seed)
            self.losses, self.seconds, self.stop_reason = [], 0.0, None
            self.noise = sample_base(self.base, self.n_preview, seed=self.seed + 1)
            self._new_batches()

    def _new_batches(self) -> None:
        batches = RandomBatches(self.data, self.batch_size, generator=self.generator)
        self._batch_loss = flow_matching_batch_loss(batches, get_base(self.base), get_coupling(self.coupling),
                                                    self.generator, self.model)

    def step(self, n_steps: int = 1) -> float:
        """Train ``n_steps`` steps now, in the calling thread; returns the last loss."""
        n_steps = check_positive_int("n_steps", n_steps, maximum=self.max_steps)
        with self.lock:
            self.model.train()
            start = time.perf_counter()
            for _ in range(n_steps):
                self.losses.append(training_step(self.optimizer, self._batch_loss))
            self.seconds += time.perf_counter() - start
            self.model.eval()
            return self.losses[-1]

    def frame(self, t: float = 0.5) -> Frame:
        """The picture's content now: losses, samples (Euler from the fixed noise), the field at t."""
        with self.lock, torch.no_grad():
            samples = solve_ode(self.model, self.noise, n_steps=self.preview_steps, method="euler").x.numpy()
            field = velocity_on_grid(self.model, t, n_grid=self.n_grid)
            speed = len(self.losses) / self.seconds if self.seconds > 0 else None
            return Frame(list(self.losses), samples, field, speed)

    def start(self, on_frame=None, frame_seconds: float = 0.25) -> None:
        """Train in a background thread until ``pause()``, calling ``on_frame()`` every ``frame_seconds``."""
        if on_frame is not None and not callable(on_frame):
            raise TypeError(f"on_frame must be callable or None, got {_short(on_frame)}")
        frame_seconds = check_real("frame_seconds", frame_seconds, low=0.0, high=60.0)
        if self.running:
            return
        pause_all(keep=self)
        self._stop.clear()
        self.stop_reason = None
        self._thread = threading.Thread(target=self._run, args=(on_frame, frame_seconds), daemon=True,
                                        name="live-trainer")
        self._thread.start()

    def _run(self, on_frame, frame_seconds: float) -> None:
        last_frame = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.n_steps >= self.max_steps:
                    self.stop_reason = f"stopped at max_steps={self.max_steps}"
                    break
                self.step(min(STEPS_PER_CHUNK, self.max_steps - self.n_steps))
                if on_frame is not None and time.perf_counter() - last_frame >= frame_seconds:
                    on_frame()
                    last_frame = time.perf_counter()
        except Exception as error:                      # shown by the status line, never lost
            self.stop_reason = f"stopped by {type(error).__name__}: {error}"
        if on_frame is not None and self.stop_reason:
            on_frame()

    def pause(self, timeout: float = 10.0) -> None:
        """Stop the background training after its current steps; the model stays as trained."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def pause_all(keep: LiveTrainer | None = None) -> int:
    """Pause every live trainer of this process but ``keep``; returns how many were training."""
    paused = 0
    for trainer in list(_TRAINERS):
        if trainer is not keep and trainer.running:
            trainer.pause()
            paused += 1
    return paused


def _pause_after_interrupt(result) -> None:
    """IPython's post_run_cell hook: a cell stopped by an interrupt pauses every trainer."""
    if isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
        pause_all()


def _install_interrupt_hook() -> None:
    """In a Jupyter kernel, make 'interrupt the kernel' pause every trainer, busy or idle.

    While a cell runs, an interrupt raises KeyboardInterrupt there (post_run_cell then pauses the
    trainers). While the kernel is idle, ipykernel ignores SIGINT: the handler it restores
    after each cell (``kernel.saved_sigint_handler``) becomes one that pauses the trainers.
    """
    global _HOOKED
    if _HOOKED:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    _HOOKED = True
    shell.events.register("post_run_cell", _pause_after_interrupt)
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and hasattr(kernel, "saved_sigint_handler"):
        previous = kernel.saved_sigint_handler

        def on_interrupt(signum, frame):
            pause_all()
            if callable(previous):
                previous(signum, frame)

        kernel.saved_sigint_handler = on_interrupt
