"""The clock every benchmark times itself with: wall time (default) or this process's CPU time.

On a quiet machine the two agree for single-threaded work. On a shared, busy machine wall
time counts the waits for a core, while CPU time (``use_clock("cpu")``, best with one torch
thread) still measures the work itself, so it keeps comparisons meaningful.
"""
from __future__ import annotations

import time

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_current = {"name": "wall"}


def use_clock(name: str) -> None:
    """Time everything from now on with ``name``: 'wall' or 'cpu'."""
    if name not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {name!r}")
    _current["name"] = name


def clock_name() -> str:
    return _current["name"]


def now() -> float:
    """Seconds on the chosen clock (only differences are meaningful)."""
    return CLOCKS[_current["name"]]()
