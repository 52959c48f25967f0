"""A grid's results: one typed :class:`GridRow` per run, and results.csv, made from the rows and
read back into them in one place."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dans.evaluation.metrics import METRIC_NAMES
from dans.experiments.diversity import DIVERSITY_COLUMNS

RESULTS_FILE = "results.csv"
# What results.csv says of every run after the columns that name it in its grid.
OUTCOME_COLUMNS = (
    "status",
    *METRIC_NAMES,
    "valid_mrr",
    "epochs",
    "best_epoch",
    "train_seconds",
    "eval_seconds",
    "peak_memory_mb",
    "device",
    *DIVERSITY_COLUMNS,
)
# The columns that name no setting of the run: those of every grid's rows.
_FIXED_COLUMNS = frozenset(("dataset", "seed", *OUTCOME_COLUMNS))


def result_columns(key_columns: Sequence[str]) -> tuple[str, ...]:
    """The columns of the results.csv of a grid whose runs ``key_columns`` tell apart."""
    return ("dataset", *key_columns, "seed", *OUTCOME_COLUMNS)


@dataclass(frozen=True)
class GridRow:
    """One run of a grid and how it ended: the values of the grid's columns that name it
    (``key``: ``sampler`` and ``decoder`` in a comparison, ``variant`` in an ablation, ``param``
    and ``value`` in a sweep), its seed, and, when it finished (``status`` ``ok``), its test
    metrics (by :data:`METRIC_NAMES`), validation MRR, epochs, cost and where it ran, and the
    diversity of its negatives when measured. A run that diverged has its key, seed and status
    alone."""

    key: Mapping[str, str]
    seed: int
    status: str = "ok"
    dataset: str = ""
    test: Mapping[str, float] = field(default_factory=dict)
    valid_mrr: float | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory_mb: float | None = None
    device: str = ""
    diversity: Mapping[str, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "ok"

    def without_machine(self) -> GridRow:
        """This row less what measures the machine it ran on (its seconds, memory and device):
        what a run gives wherever and however it ran."""
        return replace(self, train_seconds=None, eval_seconds=None, peak_memory_mb=None, device="")

    def cells(self) -> dict[str, str]:
        """The row as results.csv writes it: a value's text, or an empty cell for none."""
        return {
            "dataset": self.dataset,
            **self.key,
            "seed": str(self.seed),
            "status": self.status,
            **{name: repr(self.test[name]) for name in METRIC_NAMES if name in self.test},
            "valid_mrr": _text(self.valid_mrr, repr),
            "epochs": _text(self.epochs, str),
            "best_epoch": _text(self.best_epoch, str),
            "train_seconds": _text(self.train_seconds, "{:.1f}".format),
            "eval_seconds": _text(self.eval_seconds, "{:.1f}".format),
            "peak_memory_mb": _text(self.peak_memory_mb, "{:.0f}".format),
            "device": self.device,
            **{name: repr(value) for name, value in self.diversity.items()},
        }

    @classmethod
    def from_cells(cls, cells: Mapping[str, str]) -> GridRow:
        """A row of results.csv as :meth:`cells` writes it (the key is every column that is not
        an outcome's, the dataset or the seed); a column a file written earlier lacks reads as
        none."""

        def number(name: str) -> float | None:
            return float(cells[name]) if cells.get(name) else None

        def count(name: str) -> int | None:
            return int(cells[name]) if cells.get(name) else None

        return cls(
            key={name: text for name, text in cells.items() if name not in _FIXED_COLUMNS},
            seed=int(cells["seed"]),
            status=cells["status"],
            dataset=cells.get("dataset", ""),
            test={name: float(cells[name]) for name in METRIC_NAMES if cells.get(name)},
            valid_mrr=number("valid_mrr"),
            epochs=count("epochs"),
            best_epoch=count("best_epoch"),
            train_seconds=number("train_seconds"),
            eval_seconds=number("eval_seconds"),
            peak_memory_mb=number("peak_memory_mb"),
            device=cells.get("device", ""),
            diversity={name: float(cells[name]) for name in DIVERSITY_COLUMNS if cells.get(name)},
        )


def _text(value: float | None, form: Callable[[float], str]) -> str:
    return "" if value is None else form(value)


def results_csv(rows: Sequence[GridRow], columns: Sequence[str]) -> str:
    """results.csv of ``rows``, with ``columns`` in that order (a cell a row lacks is empty)."""
    return render_csv([row.cells() for row in rows], columns)


def read_rows(path: Path) -> list[GridRow]:
    """The rows of results.csv ``path``."""
    return [GridRow.from_cells(cells) for cells in read_csv(path)]


def render_csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` (dicts by column), with ``columns`` in that order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    """Every row of the CSV file ``path`` by column (results.csv, log.csv, trials.csv)."""
    with path.open(newline="") as file:
        return list(csv.DictReader(file))
