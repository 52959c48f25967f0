"""Exporting a trained run for other tools: its embeddings, its id maps and its weights, in files
that NumPy, a spreadsheet, ``torch.load(weights_only=True)`` or safetensors read."""

from __future__ import annotations

import contextlib
import io
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from dans.errors import DansError
from dans.files import make_folder, write_atomic
from dans.folders import MARKER_FILE, Kind, kind_of, mark, other_kind
from dans.rundir import ENTITIES_FILE, RELATIONS_FILE, id_map

if TYPE_CHECKING:
    from dans.rundir import Run

EXPORT_FORMATS = ("npy", "tsv", "safetensors")
# Every file an export writes, in any format: replacing an export removes these alone.
EXPORT_FILES = (
    MARKER_FILE,
    ENTITIES_FILE,
    RELATIONS_FILE,
    *(f"{kind}_embeddings.{fmt}" for kind in ("entity", "relation") for fmt in ("npy", "tsv")),
    "model.pt",
    "embeddings.safetensors",
    "model.safetensors",
)


def embeddings(run: Run) -> dict[str, Tensor]:
    """What the decoder scores: the encoder's entity embeddings, shape (E, d), and the
    decoder's relation representations, shape (R, d_r), on the CPU. For the complex-valued
    decoders (ComplEx, RotatE) the first half of an entity's row is its real part and the
    second its imaginary part."""
    entities, relations = run.model.inference()
    return {"entities": entities.cpu(), "relations": relations.cpu()}


def export_run(run: Run, out: Path, fmt: str) -> list[Path]:
    """Write ``run``'s embeddings (:func:`embeddings`) in ``fmt``, its id maps
    (``entities.tsv`` and ``relations.tsv``: id, then name) and its model weights into
    ``out``; returns the files written, each written whole or not at all.

    npy and tsv give ``entity_embeddings.{fmt}`` and ``relation_embeddings.{fmt}``, one row
    per id, and the weights as ``model.pt``, a plain state dict that ``torch.load(path,
    weights_only=True)`` reads; safetensors gives ``embeddings.safetensors`` (tensors
    ``entities`` and ``relations``) and ``model.safetensors``.
    """
    if fmt not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise DansError(f"unknown export format {fmt!r}; choose one of: {choices}")
    _check_out(out)
    files = {
        ENTITIES_FILE: id_map(run.kg.entity_names),
        RELATIONS_FILE: id_map(run.kg.relation_names),
    }
    tables = embeddings(run)
    weights = {key: value.cpu().contiguous() for key, value in run.model.state_dict().items()}
    if fmt == "safetensors":
        files["embeddings.safetensors"] = _safetensors(tables)
        files["model.safetensors"] = _safetensors(weights)
    else:
        for kind, table in (("entity", tables["entities"]), ("relation", tables["relations"])):
            files[f"{kind}_embeddings.{fmt}"] = _npy(table) if fmt == "npy" else _tsv(table)
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        files["model.pt"] = buffer.getvalue()
    _publish(out, files)
    return [out / name for name in files]


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that an export must not replace: anything but a new or empty folder or
    an earlier export."""
    if out.exists() and not out.is_dir():
        raise DansError(f"{out}: exists and is not a directory")
    kind = kind_of(out)
    if kind is not None and kind != Kind.EXPORT:
        raise other_kind(out, kind, Kind.EXPORT)
    if kind is None and out.is_dir() and any(out.iterdir()):
        raise DansError(
            f"{out}: holds files that are not a dans export; an export is written into a new "
            "or empty folder, or replaces an earlier export: choose another --out"
        )


def _publish(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a new folder beside ``out`` and rename it into place, so that ``out``
    holds the whole export or none of it. An earlier export in ``out`` is replaced; what else
    that folder held (files of the user's) is moved into the new one."""
    make_folder(out.parent)
    staged = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    make_folder(staged)
    try:
        mark(staged, Kind.EXPORT)
        for name, data in files.items():
            write_atomic(staged / name, data)
        earlier = out.parent / f".{out.name}.{secrets.token_hex(6)}.old"
        if out.is_dir():
            out.rename(earlier)
        staged.rename(out)
    except OSError as exc:
        _remove_export(staged)
        raise DansError(f"{out}: cannot write the export ({exc.strerror or exc})") from None
    except BaseException:
        _remove_export(staged)
        raise
    if earlier.is_dir():
        for entry in earlier.iterdir():
            if entry.name not in EXPORT_FILES:
                entry.rename(out / entry.name)
        _remove_export(earlier)


def _remove_export(folder: Path) -> None:
    """Remove an export's files from ``folder``, and the folder once empty."""
    for name in EXPORT_FILES:
        (folder / name).unlink(missing_ok=True)
    for temporary in folder.glob(".*.tmp"):
        temporary.unlink()
    with contextlib.suppress(OSError):  # it holds something else
        folder.rmdir()


def _npy(table: Tensor) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, table.numpy())
    return buffer.getvalue()


def _tsv(table: Tensor) -> bytes:
    """One row per id, tab-separated, with the 9 significant digits that read back to the same
    float32."""
    buffer = io.StringIO()
    np.savetxt(buffer, table.numpy(), delimiter="\t", fmt="%.9g")
    return buffer.getvalue().encode()


def _safetensors(tensors: dict[str, Tensor]) -> bytes:
    try:
        from safetensors.torch import save
    except ImportError:
        raise DansError(
            "--format safetensors needs the safetensors package: pip install 'dans-kge[export]'"
        ) from None
    return save(tensors)
