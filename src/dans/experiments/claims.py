"""Claims on the runs of a grid, so that several processes (on one machine, or on several that
share the folder) can work through one grid: each run is claimed before it trains, atomically,
with a lease that a heartbeat renews and that lapses when its holder dies; one lock
serialises the rewrites of the grid's results; and each process's sitting is recorded, so that
the grid's wall clock adds up across sittings."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from dans.rundir import make_folder

# A claim not renewed for this long belongs to a holder that died; renewed every HEARTBEAT.
LEASE_SECONDS = 300.0
HEARTBEAT_SECONDS = 30.0
CLAIMS_FOLDER, SITTINGS_FOLDER, LOCK_FILE = "claims", "sittings", ".lock"


class Claims:
    """The runs this process holds in the grid folder ``out``, as files
    ``out/claims/<run>.claim`` naming the holder; renewed while held, by a daemon thread.

    The same thread keeps ``out/sittings/<holder>`` current: it holds the time this process
    started on the grid, and its modification time is when the process was last seen alive.
    """

    def __init__(self, out: Path, lease_seconds: float = LEASE_SECONDS) -> None:
        self.folder = out / CLAIMS_FOLDER
        make_folder(self.folder)
        self.lease_seconds = lease_seconds
        # How often a run another process holds is looked at again.
        self.retry_seconds = min(HEARTBEAT_SECONDS, lease_seconds / 3)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._sitting = out / SITTINGS_FOLDER / self.holder.replace(":", "-")
        make_folder(self._sitting.parent)
        self._sitting.write_text(f"{time.time()!r}\n")
        self._held: set[str] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._heartbeat.start()

    def take(self, name: str) -> bool:
        """Claim run ``name``: True when this process now holds it, False when another live
        holder does. A claim whose lease lapsed is taken over."""
        path = self._path(name)
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not self._lapsed(path):
                return False
            # Replace the dead holder's claim; of two processes doing so at once, the one whose
            # name the file ends up holding wins.
            staged = path.with_name(f".{name}.{secrets.token_hex(4)}.claim")
            staged.write_text(self.holder)
            os.replace(staged, path)
            if path.read_text() != self.holder:
                return False
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(self.holder)
        with self._guard:
            self._held.add(name)
        return True

    def release(self, name: str) -> None:
        """Give up run ``name`` (trained, or left for another holder)."""
        with self._guard:
            self._held.discard(name)
        with contextlib.suppress(FileNotFoundError):
            if self._path(name).read_text() == self.holder:
                self._path(name).unlink()

    def close(self) -> None:
        """Stop renewing and release every claim still held."""
        self._stop.set()
        self._heartbeat.join()
        os.utime(self._sitting)
        for name in list(self._held):
            self.release(name)

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.claim"

    def _lapsed(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > self.lease_seconds
        except FileNotFoundError:  # released meanwhile: free, but let the next pass take it
            return False

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            with self._guard:
                held = list(self._held)
            for path in [self._sitting, *map(self._path, held)]:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(path)


def wall_seconds(out: Path) -> float:
    """How long processes worked on the grid in ``out``, summed over its sittings (each from
    its start to when it was last seen alive, to within a heartbeat), time two of them
    overlapped counted once; 0 for a grid with no record of its sittings."""
    return covered_seconds(sitting_spans(out).values())


def sitting_spans(out: Path) -> dict[str, tuple[float, float]]:
    """Each sitting of the grid in ``out``, by its process: (start, last seen alive), in
    seconds since the epoch."""
    folder = out / SITTINGS_FOLDER
    return {
        path.name: (float(path.read_text()), path.stat().st_mtime)
        for path in (folder.iterdir() if folder.is_dir() else ())
    }


def covered_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """The time that (start, end) ``spans`` cover, time two of them overlap counted once."""
    total, reached = 0.0, -math.inf
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return total


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the grid folder's lock: one process at a time rewrites its results and tables, so
    each rewrite sees every run finished before it. Without ``fcntl`` (Windows) it holds
    nothing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with (out / LOCK_FILE).open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
