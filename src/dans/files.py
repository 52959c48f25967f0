"""Files written so that a crash never leaves a torn one: atomic writes, and folders made with a
one-line error."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dans.errors import DansError, DansFailure


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place, and
    fsync the folder so that the rename itself survives a power cut.

    A crash at any moment leaves either the old file or the new one, never a torn mix. An OS
    error (no permission, a full disk) becomes a one-line :class:`DansFailure` naming ``path``,
    and the old file is left as it was.
    """
    # Not tempfile.mkstemp: its files are private (0600) whatever the umask.
    name = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    tmp: Path | None = None  # the temporary file, while it exists
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        tmp = name
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as exc:
        kept = "; the previous file is kept" if tmp is not None and path.exists() else ""
        raise DansFailure(f"{path}: cannot write ({exc.strerror or exc}){kept}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user asked for, creating its folder; see :func:`write_atomic`."""
    make_folder(path.parent)
    write_atomic(path, data)


def make_folder(path: Path) -> None:
    """Create ``path`` and its parents if missing; an OS error becomes a one-line
    :class:`DansError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DansError(f"{path}: cannot create the folder ({exc.strerror or exc})") from None
