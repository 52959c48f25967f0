"""The memory a run takes on the device it trains on (its peak, for its metrics) and the
memory that device has."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import torch

from dans.allocator import release_freed_memory

# Linux: writing "5" to clear_refs sets the process's peak resident set (VmHWM) back to its
# current size, so a process that trains run after run (a grid's worker) reports each one's own.
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak(device: torch.device) -> None:
    """Start measuring the peak from now, where the platform allows it (CUDA, Linux); elsewhere
    :func:`peak_mb` is the peak since the process started."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    # What malloc holds free (see dans.allocator) would count in the new peak otherwise.
    release_freed_memory()
    # Not Linux, or a kernel that refuses it: the process's lifetime peak stands.
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def peak_mb(device: torch.device) -> float | None:
    """The peak memory, in MiB, since :func:`reset_peak`: what CUDA allocated on a GPU, the
    process's resident set otherwise (None where the platform does not say, as on Windows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def total_bytes(device: torch.device) -> int | None:
    """The memory of ``device``: the GPU's own, or the machine's physical memory (None where the
    platform does not say)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return None
