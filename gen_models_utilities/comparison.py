"""Measuring flow matching, diffusion and a CNF side by side (notebook 17b).

Helpers that turn runs into the numbers of the chapter's summary table: quality while
training (through a global optimiser hook, so any trainer can be watched unchanged), the
steps needed to reach a quality target, the fewest sampler steps that reach it, and a
plain-text table.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ._checks import check_positive_int, check_real
from .metrics import wasserstein2


class QualityTracker:
    """Calls ``evaluate(model) -> float`` every ``every`` optimiser steps while active.

    Use as a context manager around any training call; it hooks ``optimizer.step`` globally
    (``torch.optim`` step post-hooks), so the trainer needs no callback argument. ``history``
    holds (step, value) pairs; ``seconds`` the time spent evaluating, to subtract from the
    trainer's wall time. The model is put back in training mode after each evaluation.
    """

    def __init__(self, model: torch.nn.Module, evaluate: Callable[[torch.nn.Module], float], every: int):
        if not callable(evaluate):
            raise TypeError(f"evaluate must be callable as evaluate(model) -> float, got {type(evaluate).__name__}")
        self.model = model
        self.evaluate = evaluate
        self.every = check_positive_int("every", every)
        self.history: list[tuple[int, float]] = []
        self.seconds = 0.0
        self.steps = 0
        self._handle = None

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            start = time.perf_counter()
            self.history.append((self.steps, float(self.evaluate(self.model))))
            self.model.train()
            self.seconds += time.perf_counter() - start

    def __enter__(self) -> "QualityTracker":
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handle = register_optimizer_step_post_hook(self._after_step)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None


def first_step_reaching(history, target: float) -> int | None:
    """The first step whose value is <= target in a [(step, value), ...] history, or None."""
    target = check_real("target", target)
    for step, value in history:
        if value <= target:
            return int(step)
    return None


def quality_by_steps(sample: Callable[[int], torch.Tensor], reference, step_grid) -> dict:
    """W2 to ``reference`` and sampling seconds of ``sample(n_steps) -> (N, 2)`` for each n in ``step_grid``.

    Returns {n_steps: {"w2": float, "seconds": float}} in the order of ``step_grid``.
    """
    result = {}
    for n_steps in step_grid:
        n_steps = check_positive_int("step_grid entry", n_steps)
        start = time.perf_counter()
        samples = sample(n_steps)
        seconds = time.perf_counter() - start
        result[n_steps] = {"w2": wasserstein2(samples, reference), "seconds": seconds}
    return result


def fewest_steps_reaching(by_steps: dict, target: float) -> int | None:
    """The smallest step count in a ``quality_by_steps`` result with W2 <= target, or None."""
    target = check_real("target", target, low=0.0)
    reached = [n for n, row in by_steps.items() if row["w2"] <= target]
    return min(reached) if reached else None


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
