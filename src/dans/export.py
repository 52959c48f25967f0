"""Exporting a trained run for other tools: its embeddings, its id maps and its weights, in files
that NumPy, a spreadsheet, ``torch.load(weights_only=True)`` or safetensors read."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from dans.errors import DansError
from dans.rundir import ENTITIES_FILE, RELATIONS_FILE, id_map, make_folder, write_atomic

if TYPE_CHECKING:
    from dans.rundir import Run

EXPORT_FORMATS = ("npy", "tsv", "safetensors")


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
    make_folder(out)
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
    for name, data in files.items():
        write_atomic(out / name, data)
    return [out / name for name in files]


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
