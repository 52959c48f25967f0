"""How the C allocator behind CPU tensors treats freed memory, where it is glibc's.

glibc's ``malloc`` maps every allocation over 32 MB afresh and unmaps it when freed. A large
graph's training step allocates and frees many such tensors (FB15k-237's pair messages are
110,000 x 200 floats), so every step faults each of their pages in again at first touch, which
cost more than a third of a FB15k-237 recipe step on a 2-core CPU. Serving every allocation from
the heap and keeping freed memory there for reuse takes that cost away, for a higher resident
set: what a step freed is held for the next one instead of returned. The ``dans`` command does
this as it starts (``DANS_MALLOC_DEFAULTS=1`` leaves ``malloc`` as it is); Python programs may
call :func:`reuse_freed_memory` themselves.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt's parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory at the top of the heap is returned to the system only beyond this (the largest
# value mallopt takes).
_NEVER_TRIM = 2**31 - 1
# Set to 1 to leave malloc's own settings.
OPT_OUT = "DANS_MALLOC_DEFAULTS"


def reuse_freed_memory() -> bool:
    """Have glibc's ``malloc`` serve every allocation from its heap and keep what is freed for
    reuse rather than return it to the system. Returns whether it did: not where the C library
    is not glibc, nor with ``DANS_MALLOC_DEFAULTS=1``."""
    libc = _glibc()
    if libc is None or os.environ.get(OPT_OUT) == "1":
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))


def release_freed_memory() -> None:
    """Return the memory ``malloc`` holds free to the system, so that the resident set is what
    the process uses (before measuring a new peak, say); nothing where the C library is not
    glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    """glibc, where it is the C library (its soname has been ``libc.so.6`` since 1997)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL("libc.so.6")
