"""Sealed files: ``torch.save`` bytes behind a header naming their kind and their SHA-256.

A checkpoint is loaded with ``weights_only=True``, so it can never run code; the digest refuses
a file that was changed after it was written (PyTorch itself checks no checksum on load), and the
kind refuses a file written for another purpose. The header line is::

    <kind> <version> sha256=<64 hex digits>\\n
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from dans.errors import DansError

SEAL_VERSION = 1


def seal(payload: dict[str, Any], kind: str) -> bytes:
    """The bytes of a sealed file holding ``payload`` (tensors, numbers, strings, containers)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    header = f"{kind} {SEAL_VERSION} sha256={hashlib.sha256(body).hexdigest()}\n"
    return header.encode() + body


def unseal(path: Path, kind: str) -> dict[str, Any]:
    """The payload of the sealed file ``path`` of ``kind``, on the CPU.

    Raises :class:`DansError` naming ``path`` when it is missing, unreadable, of another kind or
    version, changed since it was written, or not a dictionary.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DansError(f"{path}: file not found") from None
    except OSError as exc:
        raise DansError(f"{path}: cannot read ({exc.strerror})") from None
    header, _, body = data.partition(b"\n")
    fields = header.split(b" ")
    if len(fields) != 3 or fields[0] != kind.encode() or not fields[2].startswith(b"sha256="):
        raise DansError(f"{path}: not a {kind} file of this tool")
    if fields[1] != str(SEAL_VERSION).encode():
        raise DansError(
            f"{path}: a {kind} file of version {fields[1].decode(errors='replace')}; "
            f"this dans reads version {SEAL_VERSION}"
        )
    if hashlib.sha256(body).hexdigest().encode() != fields[2].removeprefix(b"sha256="):
        raise DansError(f"{path}: damaged or changed since it was written (checksum mismatch)")
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise DansError(f"{path}: not a readable {kind} file ({first_line(exc)})") from None
    if not isinstance(payload, dict):
        raise DansError(f"{path}: not a {kind} file of this tool")
    return payload


def first_line(exc: Exception) -> str:
    """The first line of an exception's message, for one-line errors."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]
