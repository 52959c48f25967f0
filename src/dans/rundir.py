"""Run directories: resolved config, per-epoch log, checkpoints and metrics, written atomically."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import io
import json
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import DansError
from dans.evaluation.metrics import Evaluation
from dans.files import write_atomic
from dans.folders import LOCK_FILE, MARKER_FILE, Kind, kind_of, mark, other_kind, writing
from dans.models.model import KGModel
from dans.samplers.base import NegativeSampler
from dans.sealed import seal, unseal
from dans.training.callbacks import TrainingCallback
from dans.training.epoch_log import EpochLog
from dans.training.trainer import Best, Trainer
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
# What a grid records of a run it trained: how diverse its negatives are, or that it diverged.
DIVERSITY_FILE, DIVERGED_FILE = "diversity.json", "diverged.txt"
# The trackers' local stores when a run has the folder to itself (`dans.tracking`).
TRACKER_STORES = ("tracking.csv", "tensorboard", "mlflow.db")
# Every file a run writes in its folder, besides the folder's marker and lock: replacing or
# restarting a run removes these (and their temporary files), and nothing else.
RUN_FILES = (
    CONFIG_FILE,
    LOG_FILE,
    CHECKPOINT_FILE,
    STATE_FILE,
    METRICS_FILE,
    PROVENANCE_FILE,
    ENTITIES_FILE,
    RELATIONS_FILE,
    DIVERSITY_FILE,
    DIVERGED_FILE,
    *TRACKER_STORES,
)
# TensorBoard's event files, the only files its tracker writes in its folder.
TENSORBOARD_EVENTS = "events.out.tfevents.*"


class RunDirectory:
    """The files of one training run. Nothing is created until :meth:`writing` starts a run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._log_rows: list[dict[str, Any]] = []

    def check_can_start(self, overwrite: bool) -> None:
        """Refuse, before anything is written, what a new run must not be written into: a path
        that is not a folder, a folder of the user's or one of a grid or search, and a run unless
        ``overwrite`` replaces it."""
        if self.path.exists() and not self.path.is_dir():
            raise DansError(f"{self.path}: exists and is not a directory")
        if not self._holds_files():
            return
        kind = self._kind()
        if kind is None:
            raise DansError(
                f"{self.path}: holds files that are not a dans run; a run is written only into "
                "a new or empty folder, or replaces a run with --overwrite: choose another --out"
            )
        if kind != Kind.RUN:
            raise other_kind(self.path, kind, Kind.RUN)
        if not overwrite:
            if (self.path / METRICS_FILE).exists():
                raise DansError(
                    f"{self.path}: holds a finished run; pass --overwrite to replace it"
                )
            raise DansError(
                f"{self.path}: holds a run that did not finish; `dans train --resume "
                f"{self.path}` finishes it, --overwrite replaces it"
            )

    def check_can_resume(self) -> None:
        """Refuse to resume what is not a run: no folder, a folder of the user's, a grid or a
        search."""
        if not self.path.is_dir():
            raise DansError(f"{self.path}: no such run directory")
        kind = self._kind()
        if kind is None:
            raise DansError(f"{self.path}: not a dans run (it has no {MARKER_FILE})")
        if kind != Kind.RUN:
            raise other_kind(self.path, kind, Kind.RUN)

    @contextlib.contextmanager
    def writing(self, start: bool = False, overwrite: bool = False) -> Iterator[None]:
        """Hold the folder's writer lock while the block runs, refusing a second writer.

        With ``start``, a new run begins here: the folder is made and marked as a run, and with
        ``overwrite`` the files of the run it held are removed, once the lock is held.
        """
        if start:
            self.check_can_start(overwrite)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DansError(
                    f"{self.path}: cannot create the run directory ({exc.strerror})"
                ) from None
        else:
            self.check_can_resume()
        with writing(self.path):
            if start:
                # Again under the lock: another process may have begun a run here meanwhile.
                self.check_can_start(overwrite)
                mark(self.path, Kind.RUN)
                self.remove_run_files()
            elif kind_of(self.path) is None:  # a run from before runs had markers
                mark(self.path, Kind.RUN)
            yield

    def remove_run_files(self) -> None:
        """Remove every file a run writes here (:data:`RUN_FILES`), and nothing else."""
        for name in RUN_FILES:
            for temporary in self.path.glob(f".{glob.escape(name)}.*.tmp"):
                _remove(temporary)
            path = self.path / name
            if path.is_dir():
                for events in path.glob(TENSORBOARD_EVENTS):
                    _remove(events)
                with contextlib.suppress(OSError):  # a folder that holds more stays
                    path.rmdir()
            else:
                _remove(path)

    def _holds_files(self) -> bool:
        """Whether the folder holds anything besides a marker and a lock."""
        return self.path.is_dir() and any(
            entry.name not in (MARKER_FILE, LOCK_FILE) for entry in self.path.iterdir()
        )

    def _kind(self) -> Kind | None:
        """What the folder's marker says it holds; a run written before runs had markers (its
        config.toml and provenance.json are dans's) counts as a run."""
        kind = kind_of(self.path)
        legacy = (self.path / CONFIG_FILE).is_file() and (self.path / PROVENANCE_FILE).is_file()
        return Kind.RUN if kind is None and legacy else kind

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
        return TrainConfig.from_toml(path, warn=False)

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
    # The run's time budget, and what training spent of it: training, validation and writing
    # the run's files together (the test not included); None for runs from before they were
    # recorded, and the budget None for a run of --epochs.
    time_budget_seconds: float | None = None
    elapsed_seconds: float | None = None

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
    # The epoch whose weights the model holds, where a checkpoint gave them.
    epoch: int | None = None


@dataclass(kw_only=True)
class FinishedRun(Run):
    """A run trained to its end and tested: its metrics are always there."""

    metrics: RunMetrics


class RunWriter(TrainingCallback):
    """Writes a run's folder as it trains: each epoch's row of ``log.csv``, the best model's
    checkpoint, and the training state that a killed run resumes from."""

    def __init__(self, run_dir: RunDirectory, config: TrainConfig) -> None:
        self.run_dir = run_dir
        self.config = config

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        self.run_dir.append_log(log.row())

    def on_best(self, trainer: Trainer, best: Best) -> None:
        self.run_dir.save_checkpoint(
            self.config, best.epoch, best.valid.mrr, best.model, best.sampler
        )

    def on_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        self.run_dir.save_state(state)
