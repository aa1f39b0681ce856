"""Measuring flow matching, diffusion and a CNF side by side (notebook 17b).

The models come from ``checkpoints.load_pretrained("diffusion" | "cnf", "gaussian")`` (their
recipes are in ``recipes.COMPANIONS``). Here: sample quality against the number of solver steps with the yardstick
``metrics.ring_quality``, the fewest steps that give samples as good as data, a count of
diverged training runs, and a plain-text table narrow enough for a projector.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from .._checks import MAX_ODE_STEPS, _short, as_list, as_points, as_real_tensor, check_callable, check_positive_int
from ..metrics import Quality, ring_quality


def quality_by_steps(sample: Callable[[int], torch.Tensor], step_grid) -> dict:
    """``metrics.ring_quality`` of ``sample(n_steps) -> (N, 2)`` for each n in ``step_grid``.

    Returns {n_steps: {"quality": Quality, "seconds": sampling time}} in the order of ``step_grid``.
    """
    check_callable("sample", sample, "sample(n_steps) -> (N, 2) points")
    step_grid = [check_positive_int("step_grid entry", n, maximum=MAX_ODE_STEPS)
                 for n in as_list("step_grid", step_grid, "step counts")]
    result = {}
    for n_steps in step_grid:
        start = time.perf_counter()
        samples = as_points(f"sample({n_steps})", sample(n_steps))
        seconds = time.perf_counter() - start
        result[n_steps] = {"quality": ring_quality(samples), "seconds": seconds}
    return result


def _check_quality(name: str, quality) -> Quality:
    if not isinstance(quality, Quality):
        raise TypeError(f"{name} must be a Quality (from metrics.ring_quality), got {_short(quality)}")
    return quality


def fewest_steps_like_data(by_steps: dict) -> int | None:
    """The smallest step count of a ``quality_by_steps`` result from which on every larger count
    in it is as good as data (``Quality.as_good_as_data``), or None."""
    if not (isinstance(by_steps, dict) and all(isinstance(v, dict) and isinstance(v.get("quality"), Quality)
                                               for v in by_steps.values())):
        raise TypeError(f"by_steps must be a quality_by_steps result {{n_steps: {{'quality': Quality, ...}}}}, "
                        f"got {_short(by_steps)}")
    counts = sorted(by_steps)
    good = [by_steps[n]["quality"].as_good_as_data for n in counts]
    for i, n in enumerate(counts):
        if all(good[i:]):
            return n
    return None


def short_verdict(quality) -> str:
    """A table cell for a ``Quality``: 'like data', or what gives it away ('W2', 'off-mode', 'modes')."""
    if _check_quality("quality", quality).as_good_as_data:
        return "like data"
    tags = [tag for tag, like_data in (("W2", quality.w2_like_data), ("off-mode", quality.off_mode_like_data),
                                       ("modes", not quality.odd_modes)) if not like_data]
    return "unlike: " + ", ".join(tags)


def quality_cell(quality) -> str:
    """A short table cell for a ``Quality``: 'W2  off-mode%', with ' *' when as good as data."""
    _check_quality("quality", quality)
    mark = " *" if quality.as_good_as_data else "  "
    return f"{quality.w2:.2f} {100 * quality.off_mode_fraction:4.1f}%{mark}"


def diverged(losses) -> bool:
    """True when a training run blew up: a loss that is not finite, or a mean loss over the last
    tenth of the steps above the mean over the first tenth."""
    losses = as_real_tensor("losses", losses).double().numpy(force=True)
    if losses.size == 0:
        raise ValueError("losses must hold at least one value")
    if not np.all(np.isfinite(losses)):
        return True
    tenth = max(losses.size // 10, 1)
    return bool(losses[-tenth:].mean() > losses[:tenth].mean())


def format_table(rows: dict, columns: list[str]) -> str:
    """A plain-text table: ``rows`` {row name: {column: value}}; values printed as given (str)."""
    if not isinstance(rows, dict) or not rows:
        raise ValueError(f"rows must be a non-empty dict {{row name: {{column: value}}}}, got {_short(rows)}")
    for name, row in rows.items():
        if not isinstance(row, dict):
            raise TypeError(f"rows must be a dict {{row name: {{column: value}}}}, got {_short(row)} for {name!r}")
    if not (isinstance(columns, (list, tuple)) and all(isinstance(c, str) for c in columns)):
        raise TypeError(f"columns must be a list of column names, got {_short(columns)}")
    names = [str(n) for n in rows]
    rows = dict(zip(names, rows.values()))
    widths = [max(len(c), *(len(str(rows[n].get(c, ""))) for n in names)) for c in columns]
    first = max(len(n) for n in names)
    lines = [" " * first + " | " + " | ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    for n in names:
        lines.append(n.ljust(first) + " | " + " | ".join(str(rows[n].get(c, "")).rjust(w)
                                                          for c, w in zip(columns, widths)))
    return "\n".join(lines)
