"""Run directories: resolved config, per-epoch log, checkpoints and metrics, written atomically."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import platform
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import DansError
from dans.evaluation.metrics import Evaluation
from dans.models.model import KGModel
from dans.samplers.base import NegativeSampler
from dans.sealed import seal, unseal
from dans.version import __version__

# The kinds of sealed file a run directory holds: the best model, and the state to resume from.
CHECKPOINT_KIND, STATE_KIND = "dans-checkpoint", "dans-training-state"
CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE, STATE_FILE, METRICS_FILE = (
    "config.toml",
    "log.csv",
    "checkpoint.pt",
    "resume.pt",
    "metrics.json",
)
# What a run was trained on and with: the data's folder and checksums, the versions, threads and
# device; and the id maps of its graph (id, then name, one per line).
PROVENANCE_FILE, ENTITIES_FILE, RELATIONS_FILE = "provenance.json", "entities.tsv", "relations.tsv"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place, and
    fsync the folder so that the rename itself survives a power cut.

    A crash at any moment leaves either the old file or the new one, never a torn mix. An OS
    error (no permission, a full disk) becomes a one-line :class:`DansError` naming ``path``,
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
        raise DansError(f"{path}: cannot write ({exc.strerror or exc}){kept}") from None
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

    def write_provenance(self, kg: KnowledgeGraph, device: str) -> None:
        """Record the graph (its resolved folder, the SHA-256 of each split and its id maps) and
        the environment (Python, torch and dans versions, torch threads, device)."""
        record = {
            "data": {
                "dataset": kg.name,
                "source": kg.source,
                "sha256": kg.checksums,
                "entities": kg.num_entities,
                "relations": kg.num_relations,
            },
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "dans": __version__,
                "threads": torch.get_num_threads(),
                "device": device,
                "platform": platform.platform(),
            },
        }
        write_atomic(self.path / PROVENANCE_FILE, (json.dumps(record, indent=2) + "\n").encode())
        write_atomic(self.path / ENTITIES_FILE, id_map(kg.entity_names))
        write_atomic(self.path / RELATIONS_FILE, id_map(kg.relation_names))

    def read_provenance(self) -> dict[str, Any] | None:
        """:meth:`write_provenance`'s record, or None for a run written before runs had one."""
        path = self.path / PROVENANCE_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DansError(f"{path}: not valid JSON ({exc})") from None

    def append_log(self, row: dict[str, Any]) -> None:
        """Add an epoch's row to ``log.csv``; columns are the union of all rows' keys."""
        self._log_rows.append(row)
        self._write_log()

    def restore_log(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``log.csv`` with the rows of a resumed run's state: rows a killed run logged
        after its last saved state are trained again and logged anew."""
        self._log_rows = list(rows)
        if rows:
            self._write_log()
        else:
            _remove(self.path / LOG_FILE)

    def _write_log(self) -> None:
        columns: dict[str, None] = {}
        for logged in self._log_rows:
            columns.update(dict.fromkeys(logged))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._log_rows)
        write_atomic(self.path / LOG_FILE, text.getvalue().encode())

    def write_metrics(self, metrics: RunMetrics) -> None:
        text = json.dumps(metrics.to_dict(), indent=2) + "\n"
        write_atomic(self.path / METRICS_FILE, text.encode())

    def save_checkpoint(
        self,
        config: TrainConfig,
        epoch: int,
        valid_mrr: float,
        model: dict[str, Any],
        sampler: dict[str, Any],
    ) -> None:
        """Save the best model's state dict (and its sampler's, such as DANS's generator) as of
        ``epoch``, for :func:`dans.load_run`."""
        payload = {
            "config": config.to_dict(),
            "epoch": epoch,
            "valid_mrr": valid_mrr,
            "model": model,
            "sampler": sampler,
        }
        write_atomic(self.path / CHECKPOINT_FILE, seal(payload, CHECKPOINT_KIND))

    def load_checkpoint(self) -> dict[str, Any]:
        """The best model's checkpoint, loaded without running any code from the file."""
        if not (self.path / CHECKPOINT_FILE).exists():
            raise DansError(
                f"{self.path / CHECKPOINT_FILE}: file not found; is {self.path} a finished dans "
                "run?"
            )
        return unseal(self.path / CHECKPOINT_FILE, CHECKPOINT_KIND)

    def save_state(self, state: dict[str, Any]) -> None:
        """Save everything a killed run needs to continue (see :meth:`Trainer.state_dict`)."""
        write_atomic(self.path / STATE_FILE, seal(state, STATE_KIND))

    def load_state(self) -> dict[str, Any] | None:
        """The state saved by :meth:`save_state`, or None when there is none yet."""
        if not (self.path / STATE_FILE).exists():
            return None
        return unseal(self.path / STATE_FILE, STATE_KIND)

    def remove_state(self) -> None:
        """Drop the resume state of a finished run: its metrics are written, nothing is left to
        resume, and the state holds the model twice over."""
        _remove(self.path / STATE_FILE)

    def read_log(self) -> list[dict[str, str]]:
        """``log.csv``'s rows, one per epoch; a missing value is an empty string."""
        path = self.path / LOG_FILE
        if not path.exists():
            raise DansError(f"{path}: no such file (is {self.path} a run directory?)")
        with path.open(newline="") as file:
            return list(csv.DictReader(file))

    def read_config(self) -> TrainConfig:
        path = self.path / CONFIG_FILE
        if not self.path.is_dir():
            raise DansError(f"{self.path}: no such run directory")
        return TrainConfig.from_toml(path)

    def read_metrics(self) -> RunMetrics | None:
        path = self.path / METRICS_FILE
        if not path.exists():
            return None
        try:
            return RunMetrics.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DansError(f"{path}: not valid JSON ({exc})") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise DansError(f"{path}: not the metrics of a dans run ({exc!r})") from None


def id_map(names: list[str]) -> bytes:
    """Names by id as text: the id, a tab and the name, one per line."""
    return "".join(f"{i}\t{name}\n" for i, name in enumerate(names)).encode()


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise DansError(f"{path}: cannot remove ({exc.strerror})") from None


@dataclass(frozen=True)
class RunMetrics:
    """What a finished run reports, as ``metrics.json`` holds it: what was trained, how long it
    took, the best validation, and the test of the model from that epoch."""

    dataset: str
    encoder: str
    decoder: str
    sampler: str
    seed: int
    epochs: int
    best_epoch: int
    valid: Evaluation
    test: Evaluation
    train_seconds: float
    eval_seconds: float
    seconds_per_epoch: float
    skipped_steps: dict[str, int]
    device: str
    num_entities: int
    num_relations: int
    # Since training began or resumed in the process that finished it: CUDA's allocations on a
    # GPU, the process's resident set otherwise; None where unknown (runs from before it was
    # recorded, platforms that do not say).
    peak_memory_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The content of ``metrics.json``, keys in field order."""
        values = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        return {**values, "valid": self.valid.to_dict(), "test": self.test.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunMetrics:
        """The inverse of :meth:`to_dict`; raises ``KeyError`` or ``TypeError`` on another
        layout."""
        fields = {
            spec.name: values[spec.name]
            for spec in dataclasses.fields(cls)
            if spec.name in values or spec.default is dataclasses.MISSING
        }
        fields["valid"] = Evaluation.from_dict(values["valid"])
        fields["test"] = Evaluation.from_dict(values["test"])
        return cls(**fields)


@dataclass
class Run:
    """A trained model with its graph, configuration and the sampler it was trained with."""

    model: KGModel
    kg: KnowledgeGraph
    config: TrainConfig
    sampler: NegativeSampler
    path: Path | None = None
    metrics: RunMetrics | None = None
