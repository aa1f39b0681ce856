"""Keep freed memory for reuse, so training and sampling steps do not page-fault (glibc only).

Each activation of a (1000, 128) layer is a fresh 512 KB block. glibc serves blocks that large
from ``mmap`` and hands them back to the kernel when they are freed (or trims them off the top of
the heap), so every step touches brand-new pages again and pays a page fault for each 4 KB:
in this suite's networks, a ReLU or a bias copy on (1000, 128) then takes 250 us instead of
30 us. ``keep_freed_memory`` raises glibc's thresholds so that freed blocks stay in the
process and the next step reuses them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3      # mallopt parameters, <malloc.h>
MMAP_THRESHOLD = 32 << 20           # blocks below 32 MB come from the heap, not from mmap
TRIM_THRESHOLD = 256 << 20          # keep up to 256 MB of free heap instead of returning it
TOP_PAD = 16 << 20                  # grow the heap in 16 MB steps

_state = {"applied": None}


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse. Process-wide, applied once; safe to call often.

    Returns True when the thresholds are set (Linux with glibc), False elsewhere, where nothing
    is changed. The cost is memory: a process may hold up to TRIM_THRESHOLD bytes of freed heap.
    """
    if _state["applied"] is None:
        _state["applied"] = _set_glibc_thresholds()
    return _state["applied"]


def _set_glibc_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
