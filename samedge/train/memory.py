"""The training loop's memory on glibc: keep freed blocks between steps, hand them back in bulk.

A CPU step allocates and frees gigabytes of activations, and length-bucketed batches change
their shapes every step. Left to its defaults glibc does two costly things with them:

- it gives freed memory back to the OS at once (the autograd thread's arena is shrunk with
  ``madvise`` on every free past 128 KB), so the next step faults every page back in: perf showed
  25-38% of a step in the kernel zeroing pages on a 2-core EPYC without bf16;
- what it keeps fragments: an untrimmed run's RSS grew to 10-13 GB over 300 steps.

So the loop keeps freed memory (``keep_freed_memory``, once) and trims the heap only when the
process holds more than ``TRIM_ABOVE_BYTES`` (``release_freed_memory``, after each step).
Elsewhere (macOS, musl) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

TRIM_ABOVE_BYTES = 4 << 30
# mallopt parameters (malloc.h) and the values set: blocks up to 32 MB (glibc's largest mmap
# threshold) come from the reusable heap, and freeing never shrinks it by itself.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_TRIM_THRESHOLD = 1 << 30
KEEP_MMAP_THRESHOLD = 32 << 20


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _glibc()


def resident_bytes() -> int | None:
    """This process's resident set size, from /proc (None where there is no /proc)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of returning them on every free.
    Process-wide; True when set."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD)) and bool(
        _LIBC.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD))


def release_freed_memory(above_bytes: int = TRIM_ABOVE_BYTES) -> bool:
    """Hand the heap's free pages back to the OS once RSS passes ``above_bytes``. True when it
    trimmed."""
    if _LIBC is None:
        return False
    rss = resident_bytes()
    if rss is not None and rss <= above_bytes:
        return False
    _LIBC.malloc_trim(0)
    return True
