"""What every tracker does, and how a run's trackers are opened and fed from its log rows."""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dans.config import TrainConfig
from dans.registry import Registry
from dans.rundir import RunMetrics
from dans.samplers import SAMPLERS
from dans.training.callbacks import TrainingCallback
from dans.training.epoch_log import EpochLog
from dans.training.trainer import Trainer

TRACKERS: Registry[Tracker] = Registry("tracker")
# Log-row columns that are not metrics: the step itself, and the phase's name.
NOT_METRICS = ("epoch", "phase")


@dataclass(frozen=True)
class TrackerSpec:
    """Which trackers a command logs to, and where: ``folder`` holds their local stores
    (TensorBoard's event files, the CSV files, MLflow's SQLite database unless ``mlflow_uri``
    names another tracking server or store); ``experiment`` groups the runs (MLflow's
    experiment). A spec is plain data, so that a grid's worker processes open their own."""

    kinds: tuple[str, ...]
    folder: Path
    experiment: str
    mlflow_uri: str | None = None
    # Whether the folder holds many runs (a grid, a search), each in its own place.
    grouped: bool = False

    def __post_init__(self) -> None:
        for kind in self.kinds:
            TRACKERS.get(kind)  # an unknown name fails here, before anything trains

    @contextlib.contextmanager
    def open(
        self, run: str, config: TrainConfig, extra: dict[str, Any] | None = None
    ) -> Iterator[RunTracker]:
        """The trackers of run ``run``, its configuration (and ``extra``) logged as parameters;
        each is told at the end whether the run finished or failed."""
        tracker = RunTracker(self, run, {**config.to_dict(), **(extra or {})})
        try:
            yield tracker
        except BaseException:
            tracker.close(finished=False)
            raise
        tracker.close(finished=True)


# Commands log to no tracker unless asked.
NO_TRACKERS = TrackerSpec((), Path(), "")


class Tracker(ABC):
    """One run's record in one tracking tool. Subclasses with a ``name`` register themselves and
    become a choice of ``--tracker``."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        TRACKERS.register(cls)

    def __init__(self, spec: TrackerSpec, run: str) -> None:
        self.spec = spec
        self.run = run

    @abstractmethod
    def log_params(self, params: dict[str, Any]) -> None:
        """The run's settings, once, before any metric."""

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Metrics measured at epoch ``step``."""

    @abstractmethod
    def close(self, finished: bool) -> None:
        """End the record: the run finished, or failed (killed, pruned, diverged)."""

    def place(self, kind: str, suffix: str = "") -> Path:
        """Where this run's local files of kind ``kind`` go: ``folder/kind<suffix>`` for a run
        of its own, ``folder/kind/<run><suffix>`` for one of many."""
        if self.spec.grouped:
            return self.spec.folder / kind / f"{self.run}{suffix}"
        return self.spec.folder / f"{kind}{suffix}"


class RunTracker(TrainingCallback):
    """The trackers of one run, made at its first log so that nothing is written before the run
    directory is (a tracker's files may live in it); as a training callback, it logs each
    epoch's row."""

    def __init__(self, spec: TrackerSpec, run: str, params: dict[str, Any]) -> None:
        self.spec, self.run, self.params = spec, run, params
        self._trackers: list[Tracker] | None = None

    def log_epoch(self, row: dict[str, Any]) -> None:
        """An epoch's log row: its loss, validation metrics, timing, and what the run's sampler
        derives from it (:meth:`~dans.samplers.base.NegativeSampler.diagnostics`)."""
        metrics = {
            key: float(value)
            for key, value in row.items()
            if key not in NOT_METRICS and _is_number(value)
        }
        sampler = self.params.get("sampler")
        if sampler in SAMPLERS.names():
            metrics |= SAMPLERS.get(sampler).diagnostics(row)
        self._log(metrics, int(row["epoch"]))

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        self.log_epoch(log.row())

    def log_final(self, metrics: RunMetrics) -> None:
        """The finished run's test metrics, best validation MRR and epoch, and times."""
        final = {f"test_{key}": value for key, value in metrics.test.both.to_dict().items()}
        final |= {
            "best_valid_mrr": metrics.valid.mrr,
            "best_epoch": float(metrics.best_epoch),
            "train_seconds": metrics.train_seconds,
            "eval_seconds": metrics.eval_seconds,
        }
        self._log(final, metrics.epochs)

    def close(self, finished: bool) -> None:
        for tracker in self._trackers or ():
            tracker.close(finished)

    def _log(self, metrics: dict[str, float], step: int) -> None:
        if self._trackers is None:
            self._trackers = [TRACKERS.get(kind)(self.spec, self.run) for kind in self.spec.kinds]
            for tracker in self._trackers:
                tracker.log_params(self.params)
        for tracker in self._trackers:
            tracker.log_metrics(metrics, step)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
