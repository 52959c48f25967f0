"""Run directories: resolved config, per-epoch log, checkpoint and metrics, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import DansError
from dans.models.model import KGModel

CHECKPOINT_FORMAT = "dans-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, METRICS_FILE = (
    "config.toml",
    "log.csv",
    "checkpoint.pt",
    "metrics.json",
)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never a torn mix.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user asked for, atomically, creating its folder; an OS error (no
    permission, a full disk) becomes a one-line :class:`DansError` and leaves any old file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise DansError(f"{path}: cannot write ({exc.strerror or exc})") from None


class RunDirectory:
    """The files of one training run. Nothing is created until :meth:`create` is called."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._log_rows: list[dict[str, Any]] = []

    def check_writable(self, overwrite: bool) -> None:
        """Refuse an existing run (unless ``overwrite``) or a path that is not a directory."""
        if self.path.exists() and not self.path.is_dir():
            raise DansError(f"{self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()) and not overwrite:
            raise DansError(f"{self.path}: already holds files; pass --overwrite to replace them")

    def create(self, overwrite: bool) -> None:
        self.check_writable(overwrite)
        try:
            if overwrite and self.path.is_dir():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DansError(
                f"{self.path}: cannot create the run directory ({exc.strerror})"
            ) from None

    def write_config(self, config: TrainConfig) -> None:
        write_atomic(self.path / CONFIG_FILE, config.to_toml().encode())

    def append_log(self, row: dict[str, Any]) -> None:
        """Add an epoch's row to ``log.csv``; columns are the union of all rows' keys."""
        self._log_rows.append(row)
        columns: dict[str, None] = {}
        for logged in self._log_rows:
            columns.update(dict.fromkeys(logged))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._log_rows)
        write_atomic(self.path / LOG_FILE, text.getvalue().encode())

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_atomic(self.path / METRICS_FILE, (json.dumps(metrics, indent=2) + "\n").encode())

    def save_checkpoint(
        self,
        model: KGModel,
        config: TrainConfig,
        epoch: int,
        valid: dict,
        sampler: nn.Module | None = None,
    ) -> None:
        """Save the model (and a learned sampler, such as DANS's generator) as of ``epoch``."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "epoch": epoch,
            "valid_mrr": float(valid.get("mrr", float("nan"))),
            "model": _cpu_state(model),
            "sampler": _cpu_state(sampler) if sampler is not None else {},
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_atomic(self.path / CHECKPOINT_FILE, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's contents, loaded without running any code from the file."""
        path = self.path / CHECKPOINT_FILE
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DansError(
                f"{path}: file not found; is {self.path} a finished dans run?"
            ) from None
        except Exception as exc:  # unpickling errors have no common base class
            raise DansError(f"{path}: not a readable dans checkpoint ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise DansError(f"{path}: not a dans checkpoint")
        return payload

    def read_config(self) -> TrainConfig:
        path = self.path / CONFIG_FILE
        if not self.path.is_dir():
            raise DansError(f"{self.path}: no such run directory")
        return TrainConfig.from_toml(path)

    def read_metrics(self) -> dict[str, Any] | None:
        path = self.path / METRICS_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DansError(f"{path}: not valid JSON ({exc})") from None


def _cpu_state(module: nn.Module) -> dict[str, Any]:
    return {key: value.detach().cpu() for key, value in module.state_dict().items()}


@dataclass
class Run:
    """A trained model with its graph, configuration and the sampler it was trained with."""

    model: KGModel
    kg: KnowledgeGraph
    config: TrainConfig
    path: Path | None = None
    metrics: dict[str, Any] | None = None
    sampler: nn.Module | None = None
