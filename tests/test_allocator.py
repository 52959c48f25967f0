"""The allocator's treatment of freed memory: kept for reuse after ``reuse_freed_memory``, given
back by ``release_freed_memory``, left alone with the opt-out (glibc only)."""

import os
import platform
import subprocess
import sys

import pytest

from dans.allocator import OPT_OUT, reuse_freed_memory

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc"
)

# A child process: its resident set (MiB) after a 256 MiB tensor is written and freed, and after
# the allocator is asked to give back what it holds free.
CHILD = """
import sys
import torch
from dans.allocator import release_freed_memory, reuse_freed_memory

def resident_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

applied = reuse_freed_memory() if sys.argv[1] == "reuse" else False
before = resident_mib()
big = torch.ones(64 * 2**20)
del big
freed = resident_mib()
release_freed_memory()
print(applied, round(freed - before), round(resident_mib() - before))
"""


def _child(mode, **env):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    applied, kept, after_release = done.stdout.split()
    return applied == "True", int(kept), int(after_release)


@glibc
def test_freed_memory_is_kept_for_reuse_then_given_back_on_request():
    applied, kept, after_release = _child("reuse")
    assert applied
    assert kept >= 200  # of the tensor's 256 MiB
    assert after_release < 50


@glibc
def test_by_default_a_large_tensor_is_given_back_when_freed():
    applied, kept, _ = _child("default")
    assert not applied and kept < 50


@glibc
def test_the_opt_out_leaves_malloc_alone():
    applied, kept, _ = _child("reuse", **{OPT_OUT: "1"})
    assert not applied and kept < 50


def test_elsewhere_it_does_nothing(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    assert reuse_freed_memory() is False
