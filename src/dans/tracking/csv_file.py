"""``--tracker csv``: each run's parameters and metrics, one per line, in a CSV file."""

from __future__ import annotations

import csv
import io
from typing import Any

from dans.errors import DansError
from dans.files import make_folder, write_atomic
from dans.tracking.base import Tracker, TrackerSpec

# The file's columns: a parameter (step empty) or a metric at an epoch.
COLUMNS = ("kind", "step", "key", "value")


class CsvTracker(Tracker):
    """Keeps ``tracking.csv`` (``tracking/<run>.csv`` for one run of many) as a table of
    (kind, step, key) -> value, rewritten whole after every log. A resumed run's epochs replace
    the rows the killed run had logged for them, so each epoch's metric appears once."""

    name = "csv"

    def __init__(self, spec: TrackerSpec, run: str) -> None:
        super().__init__(spec, run)
        self.path = self.place("tracking", ".csv")
        make_folder(self.path.parent)
        self._rows = self._read()

    def log_params(self, params: dict[str, Any]) -> None:
        self._write([("param", "", key, str(value)) for key, value in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._write([("metric", str(step), key, repr(value)) for key, value in metrics.items()])

    def close(self, finished: bool) -> None:
        self._write([("status", "", "finished", str(finished).lower())])

    def _read(self) -> dict[tuple[str, str, str], str]:
        """The rows an earlier sitting of the run wrote, if any."""
        if not self.path.exists():
            return {}
        try:
            with self.path.open(newline="", encoding="utf-8") as file:
                return {
                    (row["kind"], row["step"], row["key"]): row["value"]
                    for row in csv.DictReader(file)
                }
        except (OSError, UnicodeDecodeError, KeyError, csv.Error) as exc:
            raise DansError(f"{self.path}: not a dans tracking file ({exc!r})") from None

    def _write(self, rows: list[tuple[str, str, str, str]]) -> None:
        for kind, step, key, value in rows:
            self._rows[kind, step, key] = value
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((*row, value) for row, value in self._rows.items())
        write_atomic(self.path, text.getvalue().encode())
