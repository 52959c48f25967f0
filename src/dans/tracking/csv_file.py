"""``--tracker csv``: each run's parameters and metrics, one per line, in a CSV file."""

from __future__ import annotations

import csv
from typing import Any

from dans.rundir import make_folder
from dans.tracking.base import Tracker, TrackerSpec

# The file's columns: a parameter (step empty) or a metric at an epoch.
COLUMNS = ("kind", "step", "key", "value")


class CsvTracker(Tracker):
    """Appends to ``tracking.csv`` (``tracking/<run>.csv`` for one run of many), flushed at
    every line: a resumed run adds its epochs after the ones already there."""

    name = "csv"

    def __init__(self, spec: TrackerSpec, run: str) -> None:
        super().__init__(spec, run)
        self.path = self.place("tracking", ".csv")
        make_folder(self.path.parent)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        if is_new:
            self._write([COLUMNS])

    def log_params(self, params: dict[str, Any]) -> None:
        self._write([("param", "", key, value) for key, value in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write([("metric", step, key, repr(value)) for key, value in metrics.items()])

    def close(self, finished: bool) -> None:
        self._write([("status", "", "finished", str(finished).lower())])
        self._file.close()

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        self._writer.writerows(rows)
        self._file.flush()
