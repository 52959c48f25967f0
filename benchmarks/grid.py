"""Train a grid of configurations; report valid and test metrics, pick the best on valid MRR only.

Example:
    python benchmarks/grid.py --grid lr=0.001,0.003,0.01 l2=0.01,0.001 --set epochs=300 \
        --out benchmarks/results/tune_umls.json

The runs train as a `dans compare` grid does, into ``--runs`` (by default the JSON file's path
without its suffix): a rerun skips the finished ones and resumes a killed one.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import dans
from dans.experiments.grids import Grid, GridOptions, GridRun
from dans.experiments.results import GridRow
from dans.options import value_type


def parse_grid(items: list[str]) -> dict[str, list]:
    fields = {key: value_type(spec) for key, spec in dans.TrainConfig.specs().items()}
    grid = {}
    for item in items:
        key, values = item.split("=", 1)
        kind = _boolean if fields[key] is bool else fields[key]
        grid[key] = [kind(value) for value in values.split(",")]
    return grid


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text == "true"


def settings_grid(fixed: dict[str, Any], grid: dict[str, list]) -> Grid:
    """One run per combination of the ``grid`` values over the ``fixed`` settings; the grid's
    keys name its columns."""
    runs = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        label = ",".join(f"{key}={value}" for key, value in setting.items())
        runs.append(
            GridRun(
                label.replace("/", "_"),
                label,
                dans.TrainConfig(**{**fixed, **setting}),
                {key: repr(value) for key, value in setting.items()},
            )
        )
    return Grid(runs, tuple(key for key in grid if key != "seed"), lambda rows, out: None)


def report_row(row: GridRow, grid: dict[str, list]) -> dict[str, Any]:
    """A results.csv row in the form the JSON file keeps: the grid's values, then metrics."""
    cells = {**row.key, "seed": str(row.seed)}
    return {
        **{key: next(v for v in grid[key] if repr(v) == cells[key]) for key in grid},
        "valid_mrr": row.valid_mrr,
        "test_mrr": row.test["mrr"],
        "test_hits@1": row.test["hits@1"],
        "test_ndcg@5": row.test["ndcg@5"],
        "best_epoch": row.best_epoch,
        "epochs": row.epochs,
        "train_seconds": row.train_seconds,
        "seconds_per_epoch": row.train_seconds / max(1, row.epochs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", nargs="+", required=True, help="key=v1,v2 ...")
    parser.add_argument("--set", nargs="*", default=[], help="fixed key=value settings")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--runs", type=Path, help="folder of the runs (default: --out, no suffix)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    args = parser.parse_args()
    fixed = {k: v[0] for k, v in parse_grid(args.set).items()}
    grid = parse_grid(args.grid)
    options = GridOptions(progress=False, jobs=args.jobs)
    results = settings_grid(fixed, grid).run(args.runs or args.out.with_suffix(""), options)
    rows = [report_row(row, grid) for row in results if row.finished]
    for row in rows:
        print(json.dumps(row), flush=True)
    best = max(rows, key=lambda row: row["valid_mrr"])
    print("best on validation:", json.dumps(best))
    args.out.write_text(
        json.dumps({"fixed": fixed, "grid": grid, "runs": rows, "best": best}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
