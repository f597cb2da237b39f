"""Keeping freed memory in the process, so a supervision step does not fault its pages in again.

A step allocates and frees the same activations, a few MB each, dozens of times. By default glibc's
malloc gives large blocks back to the operating system when they are freed (``mmap`` above a threshold
that it raises as it goes, ``trim`` of the heap's free top), and the next step touches fresh pages:
each page costs a fault. A bf16 evaluation step of the paper's Sudoku models at batch 384 on 2 CPU cores
took 12-19 million faults and 1.8-2.2x as long as with the memory kept (docs/performance.md). The command
line keeps it; a program that drives trmzoo from Python can call :func:`keep_freed_memory` itself.
"""

from __future__ import annotations

import ctypes
import os
import sys

from trmzoo.errors import env_switch

KEEP_BYTES = 1 << 30
"""Blocks below this come from the heap, and this much free memory may stay at its top."""
OPT_OUT = "TRMZOO_KEEP_FREED_MEMORY"
"""Set to 0 (or false, no, off) to leave the allocator as it is."""
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory in this process for reuse; return whether it was set.

    The process then keeps its peak memory until it exits instead of returning it between steps.
    Nothing is changed off Linux, under ``TRMZOO_KEEP_FREED_MEMORY=0``, or where the user has tuned
    malloc already (``MALLOC_*_`` variables, ``GLIBC_TUNABLES``). Another allocator loaded with
    ``LD_PRELOAD`` (jemalloc, tcmalloc) is unaffected: it has its own settings. A value of the variable
    other than on or off is a :class:`~trmzoo.errors.TrmzooError`.
    """
    if not env_switch(OPT_OUT, default=True) or not sys.platform.startswith("linux"):
        return False
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    # Both are needed: a fixed mmap threshold alone leaves the trimmed heap faulting, and a trim
    # threshold alone fixes the mmap threshold at its small default.
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))
