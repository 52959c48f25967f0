"""What a folder that dans writes is, and which process writes it.

Every folder dans makes for a run, a grid of runs, a search or an export carries a marker,
``.dans.json``, written before anything else in it. dans replaces, resumes or removes files
only in a folder whose marker says it is of the kind the command works on, so a folder of the
user's, or a grid's, is never taken for a run. A run folder has one writer at a time: the
process holds an exclusive lock on its ``.dans.lock`` for the run's life, and the operating
system releases it when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from dans.errors import DansError
from dans.files import write_atomic
from dans.version import __version__

MARKER_FILE, LOCK_FILE = ".dans.json", ".dans.lock"


class Kind(StrEnum):
    """What a folder dans wrote holds."""

    RUN = "run"
    GRID = "grid"
    SEARCH = "search"
    EXPORT = "export"

    @property
    def described(self) -> str:
        return {
            Kind.RUN: "a dans run",
            Kind.GRID: "a grid of dans runs (compare, ablate or sweep)",
            Kind.SEARCH: "a dans tune search",
            Kind.EXPORT: "a dans export",
        }[self]

    def resumed_by(self, folder: Path) -> str:
        """The command that goes on with a folder of this kind."""
        return {
            Kind.RUN: f"`dans train --resume {folder}` finishes it",
            Kind.GRID: f"the grid command that made it, run again with `--out {folder}`, resumes "
            "it",
            Kind.SEARCH: f"`dans tune` with `--out {folder}` resumes it",
            Kind.EXPORT: f"`dans export RUN --out {folder}` replaces it",
        }[self]


def kind_of(folder: Path) -> Kind | None:
    """The kind ``folder``'s marker names, or None for a folder without one (or no folder)."""
    path = folder / MARKER_FILE
    try:
        return Kind(json.loads(path.read_text())["kind"])
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DansError(f"{path}: not a dans folder marker ({exc!r}); remove it by hand") from None


def mark(folder: Path, kind: Kind) -> None:
    """Write ``folder``'s marker, saying it holds ``kind`` (it exists already)."""
    record = {"kind": str(kind), "dans": __version__}
    write_atomic(folder / MARKER_FILE, (json.dumps(record) + "\n").encode())


def claim_folder(folder: Path, kind: Kind, adopt: bool = False) -> None:
    """Make sure ``folder`` is dans's folder of ``kind``, marking it if it is new or empty.

    A folder of another kind is refused with what it is and which command goes on with it; one
    that holds files but no marker is refused as the user's, unless ``adopt`` says its files are
    those of a folder of ``kind`` written before folders had markers.
    """
    found = kind_of(folder)
    if found == kind:
        return
    if found is not None:
        raise other_kind(folder, found, kind)
    if folder.is_dir() and any(folder.iterdir()) and not adopt:
        raise DansError(
            f"{folder}: holds files that dans did not write as {kind.described}; dans writes "
            "only into a new or empty folder, or one it made: choose another folder"
        )
    mark(folder, kind)


def other_kind(folder: Path, found: Kind, wanted: Kind) -> DansError:
    """The refusal of a folder that holds ``found`` where a command wanted ``wanted``."""
    return DansError(
        f"{folder}: holds {found.described}, not {wanted.described}; {found.resumed_by(folder)}"
    )


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock, which must be free: a second writer is refused in one line
    naming the holder's pid and host. Re-entrant in one process, so that a grid can hold a run's
    folder across the training that also takes it."""
    key = folder.resolve()
    if key in _held:
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(folder), 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            os.close(_held.pop(key)[0])  # closing the descriptor releases the lock


# The locks this process holds: folder -> [descriptor, depth].
_held: dict[Path, list[int]] = {}


def _acquire(folder: Path) -> int:
    """Lock ``folder/.dans.lock`` without waiting and write this process into it; returns the
    open descriptor that holds the lock."""
    path = folder / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DansError(f"{path}: cannot open the lock ({exc.strerror or exc})") from None
    if not lock(descriptor, blocking=False):
        holder = _holder(path)
        os.close(descriptor)
        raise DansError(
            f"{folder}: another dans process is writing it ({holder}); wait for it to end, or "
            "stop it"
        )
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return descriptor


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "a process that has not yet said which"


def lock(descriptor: int, blocking: bool) -> bool:
    """Take the exclusive lock of the open file ``descriptor``, waiting for it or not; False
    when another process holds it. Released when the descriptor is closed or its process ends.
    """
    try:
        import fcntl
    except ImportError:  # Windows: lock a byte far past what the file holds
        import msvcrt

        os.lseek(descriptor, 1 << 30, os.SEEK_SET)
        try:
            msvcrt.locking(descriptor, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True
