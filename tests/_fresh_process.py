"""Measured workloads in a fresh Python process, and the memory measure they report.

A memory figure taken inside the pytest process depends on everything that ran before it in
that process: the allocator's free lists and arenas, caches other tests filled, objects they
left behind. ``run_fresh("module", "function", **arguments)`` starts a new interpreter (one
torch/OpenMP thread, the Agg backend, no progress bars), imports ``module`` from tests/, calls
``function(**arguments)`` and returns the dict it returned, read back as JSON from stdout. An
exception in there (an assert of the workload included) fails the calling test with the child's
traceback.

``Memory`` is what a workload samples, after a full garbage collection:

- ``heap_mb``: the bytes the process holds allocated: glibc malloc's chunks in use, mmap'ed
  ones included (``mallinfo2``: every tensor, array and large Python object lives there), plus
  the blocks of Python's small-object allocator (``sys._debugmallocstats``). Freed memory the
  allocator keeps for reuse is not counted, so this moves only when something stays alive: what
  a leak is. None where glibc's ``mallinfo2`` is missing (not Linux/glibc >= 2.33).
- ``rss_mb``: the resident set (VmRSS) after ``malloc_trim(0)`` hands free pages back; what
  the operating system sees, including allocator fragmentation and thread stacks, so noisier.

``slope(values)`` is growth per step of a series sampled after each step (Theil-Sen: the
median of all pairwise slopes), so a one-off allocation near either end does not count as a
leak, while memory that grows with every step does.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
RESULT_MARKER = "FRESH-PROCESS-RESULT "
FRESH_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GEN_MODELS_PROGRESS": "0",
                     "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}

# What the child runs: argv = [root, tests folder, module, function, JSON of the arguments].
_BOOT = f"""
import importlib, json, sys
root, tests, module, function, arguments = sys.argv[1:6]
sys.path[:0] = [root, tests]
import matplotlib
matplotlib.use("Agg")
import torch
torch.set_num_threads(1)
result = getattr(importlib.import_module(module), function)(**json.loads(arguments))
print("\\n" + {RESULT_MARKER!r} + json.dumps(result), flush=True)
"""


def run_fresh(module: str, function: str, timeout: float = 300, **arguments) -> dict:
    """``module.function(**arguments)`` in a new interpreter; its returned dict (JSON-able)."""
    import pytest

    command = [sys.executable, "-c", _BOOT, str(ROOT), str(TESTS), module, function, json.dumps(arguments)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **FRESH_ENVIRONMENT})
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{module}.{function}({arguments}) ran over {timeout} s in its fresh process:\n"
                    f"{_tail(expired.stderr)}", pytrace=False)
    results = [line[len(RESULT_MARKER):] for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not results:
        pytest.fail(f"{module}.{function}({arguments}) failed in its fresh process (exit {done.returncode}):\n"
                    f"{_tail(done.stderr)}", pytrace=False)
    return json.loads(results[-1])


def _tail(text, n_chars: int = 6000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-n_chars:]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


class Memory:
    """Samples of this process's memory in MB, each after ``gc.collect()`` (see the module docstring)."""

    def __init__(self):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            libc = None
        self._mallinfo2 = getattr(libc, "mallinfo2", None)
        if self._mallinfo2 is not None:
            self._mallinfo2.restype = _MallInfo2
        self._malloc_trim = getattr(libc, "malloc_trim", None)
        self._frozen = False

    @property
    def measures_heap(self) -> bool:
        return self._mallinfo2 is not None

    def sample(self) -> tuple[float | None, float]:
        """(heap_mb, rss_mb) now. The first sample is the baseline: what is alive then is frozen
        out of later collections (``gc.freeze``), so that each later one takes milliseconds, not
        the 0.1 s a full collection of a process with torch and matplotlib takes."""
        gc.collect()
        if not self._frozen:
            gc.freeze()
            self._frozen = True
        heap = None
        if self._mallinfo2 is not None:
            info = self._mallinfo2()
            heap = (info.uordblks + info.hblkhd + _python_small_blocks()) / 2 ** 20
        if self._malloc_trim is not None:
            self._malloc_trim(0)
        return heap, rss_mb()


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss       # the peak, KB on Linux, bytes on macOS
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def _python_small_blocks() -> int:
    """Bytes in the blocks of CPython's small-object allocator (its arenas are mmap'ed, not malloc'ed)."""
    if not hasattr(sys, "_debugmallocstats"):
        return 0
    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)            # _debugmallocstats writes to C's stderr
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    found = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    return int(found.group(1).replace(",", "")) if found else 0


def slope(values: list[float]) -> float:
    """Growth per step of ``values`` (one sample per step): the median of all pairwise slopes."""
    pairs = [(values[j] - values[i]) / (j - i) for i in range(len(values)) for j in range(i + 1, len(values))]
    return statistics.median(pairs) if pairs else 0.0
