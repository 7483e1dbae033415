"""Keep glibc from returning and re-mapping the U-Nets' activation buffers on every call.

By default glibc serves allocations above a (dynamic) threshold with ``mmap`` and gives freed heap
memory back to the kernel, so every U-Net call on a 200 × 200 field maps, faults in and unmaps tens
of MB: on this CPU a third of the evaluation's CPU time was kernel time (page faults). Raising the
mmap threshold to its maximum (32 MiB on 64-bit), the trim threshold and the top pad keeps those
buffers in the heap for reuse: the chain ran 1.9 × faster (``benchmarks/bench_evaluation.py``,
docs/evaluation.md), at the price of a resident size that stays at its peak.

Applied once at import on Linux/glibc through ``mallopt(3)``; skipped when
``PRECIPDIFF_MALLOC_TUNING=0`` or when the user set any ``MALLOC_*`` variable of their own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt(3) parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 2**30}


def tune_malloc() -> bool:
    """Apply :data:`SETTINGS` with ``mallopt``; True if all were accepted."""
    if not sys.platform.startswith("linux") or os.environ.get("PRECIPDIFF_MALLOC_TUNING", "1") == "0":
        return False
    if any(key.startswith("MALLOC_") for key in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
