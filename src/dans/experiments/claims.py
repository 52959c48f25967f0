"""Claims on the runs of a grid, so that several processes (on one machine, or on several that
share the folder) can work through one grid: each run is claimed before it trains, atomically,
with a lease that a heartbeat renews and that lapses when its holder dies; one lock
serialises the rewrites of the grid's results; and each worker process records when it started
and when it was last alive, so that the grid's wall clock adds up across its workers."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from dans.files import make_folder, write_atomic
from dans.folders import lock

# A claim not renewed for this long belongs to a holder that died; renewed every HEARTBEAT.
LEASE_SECONDS = 300.0
HEARTBEAT_SECONDS = 30.0
CLAIMS_FOLDER, WORKERS_FOLDER, LOCK_FILE = "claims", "workers", ".lock"
# Where grids written before the workers' records were named for them keep theirs.
OLD_WORKERS_FOLDER = "sittings"
# The exit status of a grid process that could not renew its claims.
EXIT_LOST_CLAIM = 1


class Claims:
    """The runs this process holds in the grid folder ``out``, as files
    ``out/claims/<run>.claim`` naming the holder and its lease; renewed while held, by a daemon
    thread.

    The same thread keeps ``out/workers/<holder>`` current: it holds the time this process
    started on the grid, and its modification time is when the process was last seen alive. A
    renewal that fails (the claim gone or taken, the folder unwritable) calls ``on_lost`` with
    the reason: by default the process reports it and ends at once, since a run it still wrote
    would be taken over by another process when its claim lapsed.
    """

    def __init__(
        self,
        out: Path,
        lease_seconds: float = LEASE_SECONDS,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.out = out
        self.folder = out / CLAIMS_FOLDER
        make_folder(self.folder)
        self.lease_seconds = lease_seconds
        # How often a run another process holds is looked at again.
        self.retry_seconds = min(HEARTBEAT_SECONDS, lease_seconds / 3)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._record = json.dumps({"holder": self.holder, "lease_seconds": lease_seconds})
        self._worker_file = out / WORKERS_FOLDER / self.holder.replace(":", "-")
        make_folder(self._worker_file.parent)
        write_atomic(self._worker_file, f"{time.time()!r}\n".encode())
        self._on_lost = on_lost or _end_process
        self._held: set[str] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._heartbeat.start()

    def take(self, name: str) -> bool:
        """Claim run ``name``: True when this process now holds it, False when another live
        holder does. A claim whose holder's lease lapsed is taken over, by one process only."""
        path = self._path(name)
        if not self._create(path):
            # Take-overs go one at a time under the grid's lock, each looking again whether the
            # claim lapsed: of many processes racing for one dead holder's run, the first
            # replaces the claim and the others find it fresh.
            with locked(self.out):
                if not self._lapsed(path):
                    return False
                write_atomic(path, self._record.encode())
        with self._guard:
            self._held.add(name)
        return True

    def release(self, name: str) -> None:
        """Give up run ``name`` (trained, or left for another holder)."""
        with self._guard:
            self._held.discard(name)
            path = self._path(name)
            if _read_claim(path)[0] == self.holder:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def close(self) -> None:
        """Stop renewing and release every claim still held."""
        self._stop.set()
        self._heartbeat.join()
        with contextlib.suppress(OSError):
            os.utime(self._worker_file)
        for name in list(self._held):
            self.release(name)

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.claim"

    def _create(self, path: Path) -> bool:
        """Create the claim ``path`` whole, atomically, unless it exists: written aside and
        hard-linked into place, so no process ever reads a claim half written."""
        staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        write_atomic(staged, self._record.encode())
        try:
            os.link(staged, path)
        except FileExistsError:
            return False
        finally:
            staged.unlink()
        return True

    def _lapsed(self, path: Path) -> bool:
        """Whether the claim ``path`` went unrenewed for longer than its holder's lease."""
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:  # released meanwhile: free, but let the next pass take it
            return False
        return age > _read_claim(path)[1]

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            reason = self._renew()
            if reason is not None:
                self._on_lost(f"cannot renew its claims in {self.folder} ({reason})")
                return

    def _renew(self) -> str | None:
        """Touch this worker's record and every claim held; what failed, or None."""
        with self._guard:  # so that no claim is released halfway through
            try:
                os.utime(self._worker_file)
                for name in self._held:
                    path = self._path(name)
                    if _read_claim(path)[0] != self.holder:
                        return f"{path} is no longer this process's"
                    os.utime(path)
            except OSError as exc:
                return str(exc)
        return None


def _read_claim(path: Path) -> tuple[str, float]:
    """The holder a claim names and the lease it holds it for. A claim written before claims
    held their lease names its holder alone, with the default lease; a damaged one is reported
    and read as a holder nobody is, with the default lease, so that it lapses."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "", LEASE_SECONDS
    except OSError as exc:
        warnings.warn(f"{path}: cannot read the claim ({exc.strerror})", stacklevel=2)
        return "", LEASE_SECONDS
    if not text.startswith("{"):
        return text.strip(), LEASE_SECONDS
    try:
        record = json.loads(text)
        return str(record["holder"]), float(record["lease_seconds"])
    except (ValueError, KeyError, TypeError) as exc:
        warnings.warn(
            f"{path}: a damaged claim ({exc!r}); it lapses after the default lease", stacklevel=2
        )
        return "", LEASE_SECONDS


def _end_process(reason: str) -> None:
    """Report on one line why this grid process stops, and end it at once: its worker
    processes follow within a second, and the runs they leave resume where they stopped."""
    print(f"dans: error: this grid process {reason}; stopping it", file=sys.stderr, flush=True)
    os._exit(EXIT_LOST_CLAIM)


def wall_seconds(out: Path) -> float:
    """How long processes worked on the grid in ``out``, summed over its workers (each from its
    start to when it was last seen alive, to within a heartbeat), time two of them overlapped
    counted once; 0 for a grid with no record of its workers."""
    return covered_seconds(worker_spans(out).values())


def worker_spans(out: Path) -> dict[str, tuple[float, float]]:
    """Each worker process of the grid in ``out``, by its holder name: (start, last seen
    alive), in seconds since the epoch."""
    spans = {}
    for name in (OLD_WORKERS_FOLDER, WORKERS_FOLDER):
        folder = out / name
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if path.name.startswith("."):  # a record being written
                continue
            try:
                spans[path.name] = (float(path.read_text()), path.stat().st_mtime)
            except (OSError, ValueError) as exc:
                warnings.warn(f"{path}: a damaged worker record, left out ({exc})", stacklevel=2)
    return spans


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
    each rewrite sees every run finished before it, and take-overs of claims go one at a
    time."""
    descriptor = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        lock(descriptor, blocking=True)
        yield
    finally:
        os.close(descriptor)  # which releases the lock
