"""One dataset's rows of the paper's Tables 2 and 3 from `dans compare` grids: each cell as mean
± std over seeds beside the paper's value, a paired t-test of MRR against uniform Holm-corrected
across the table, the device each cell's runs trained on, seconds per epoch (each run's median
epoch, so that a grid paused or killed mid-epoch does not count) and peak memory per cell, and
each grid's wall clock.

    python benchmarks/paper_tables.py --dataset nell-995 GRID [GRID ...] \
        --out benchmarks/results/nell_table

GRID is the --out folder of a `dans compare` run (several: grids that share a dataset, say one
per decoder). Writes, under --out: results.csv (every grid's rows), table.md (`dans compare`'s
own table of them), paper_table.md (printed too), paper_table.json (the figures behind it), and
runs/, each finished run's record (its config, metrics, diversity and log, not its checkpoints).

Copied into a new grid folder, runs/ lets `dans compare` resume the grid on another machine: the
runs recorded there count as done. --earlier FOLDER adds the runs of a folder this script wrote
before: its results.csv rows join the table (a grid's own row of the same run replaces one), each
run's seconds per epoch comes from its log under FOLDER/runs or, for a run without one, is its
cell's figure in FOLDER/paper_table.json (the mean of its runs', so a cell's mean over old and
new runs stays exact), and the grids recorded there are listed with the new ones: a grid of
the same folder name, rendered again or resumed on another machine, adds its runs and workers
to its record.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from dans.experiments import paper
from dans.experiments.claims import covered_seconds, worker_spans
from dans.experiments.compare import KEY_COLUMNS, Cell, render_table
from dans.experiments.paper import RunKey, paper_table, run_key
from dans.experiments.results import (
    RESULTS_FILE,
    GridRow,
    read_csv,
    read_rows,
    result_columns,
    results_csv,
)
from dans.files import write_atomic
from dans.rundir import CONFIG_FILE, DIVERGED_FILE, DIVERSITY_FILE, LOG_FILE, METRICS_FILE

# What a finished run keeps once its checkpoints are gone: enough for `dans compare` to count it
# as done, and its log.
RUN_RECORD = (CONFIG_FILE, METRICS_FILE, DIVERSITY_FILE, DIVERGED_FILE, LOG_FILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grids", type=Path, nargs="+", help="dans compare --out folders")
    parser.add_argument(
        "--dataset", required=True, help="the dataset: umls, wn18rr, nell-995, fb15k-237"
    )
    parser.add_argument(
        "--samplers", default=",".join(paper.SAMPLERS), help="rows, in order (comma-separated)"
    )
    parser.add_argument("--decoders", default=",".join(paper.DECODERS), help="blocks, in order")
    parser.add_argument("--seeds", type=int, default=3, help="seeds that complete a cell")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--earlier", type=Path, help="a folder this script wrote before")
    args = parser.parse_args()
    grid_rows = {grid: read_rows(grid / RESULTS_FILE) for grid in args.grids}
    rows, epochs, records = read_earlier(args.earlier) if args.earlier else ([], {}, [])
    for grid, these in grid_rows.items():
        epochs |= epoch_seconds(grid / "runs", these)
        records.append(grid_record(grid, these))
    rows = joined(rows, [row for these in grid_rows.values() for row in these])
    grids = merge_records(records, rows)
    # The paper gives FB15k-237's figures only in an appendix that is not public: none to show.
    published = paper.published()["values"].get(args.dataset, {})
    markdown, figures = paper_table(
        rows, published, args.samplers.split(","), args.decoders.split(","), args.seeds, epochs
    )
    markdown += "\n" + "\n".join(
        f"Grid `{g['grid']}`: {g['runs']} runs finished, wall clock {g['wall_hours']:.1f} h "
        f"from the {g['workers']} `dans compare` process{'es' * (g['workers'] != 1)} "
        f"recorded{' (side by side counted once)' * (g['workers'] > 1)}; run time summed "
        f"{g['run_hours']:.1f} h."
        for g in grids
    )
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    columns = result_columns(KEY_COLUMNS)
    write_atomic(args.out / RESULTS_FILE, results_csv(rows, columns).encode())
    write_atomic(args.out / "table.md", render_table(rows).encode())
    write_atomic(args.out / "paper_table.md", (markdown + "\n").encode())
    record = {"dataset": args.dataset, "cells": figures, "grids": grids}
    write_atomic(args.out / "paper_table.json", (json.dumps(record, indent=1) + "\n").encode())
    for grid, these in grid_rows.items():
        keep_runs(grid / "runs", these, args.out / "runs")


def joined(earlier: list[GridRow], new: list[GridRow]) -> list[GridRow]:
    """``earlier`` rows with each run that ``new`` holds again in its place, then the runs new
    to them in ``new``'s order: joining a grid whose results.csv lists its runs in another
    order (one of several commands sharing its folder wrote it last) moves no row."""
    fresh = {run_key(row): row for row in new}
    kept = [fresh.pop(run_key(row), row) for row in earlier]
    return kept + list(fresh.values())


def grid_record(grid: Path, rows: list[GridRow]) -> dict:
    """A grid's name, its finished runs (of ``rows``, its results.csv) and its worker
    processes, each as [start, last seen alive]."""
    return {
        "grid": grid.name,
        "run_names": sorted(_run_name(row) for row in rows if row.finished),
        "spans": {holder: list(span) for holder, span in worker_spans(grid).items()},
    }


def merge_records(records: list[dict], rows: list[GridRow]) -> list[dict]:
    """One record per grid name, in order of first appearance, with its runs, wall clock,
    worker processes and the run time of its runs (from ``rows``, every grid's). Records of one
    name are a grid rendered again, or resumed in a folder of that name on another machine:
    their runs and workers are united, a worker seen twice spanning both. A run listed by grids of
    several names (copied into another grid's folder, which then counts it as done) belongs to
    the first that lists it, and so does a worker (its grid's folder renamed, the record of its
    processes with it). A record from before workers and runs were kept by name stands as it
    is, alone under its name."""
    merged: dict[str, dict] = {}
    trained_by: dict[str, str] = {}
    worked_for: dict[str, str] = {}
    for record in records:
        name = record["grid"]
        if "spans" not in record or "spans" not in merged.get(name, record):
            if name in merged:
                raise SystemExit(f"grid {name}: recorded without its workers; use another name")
            merged[name] = record
            continue
        into = merged.setdefault(name, {"grid": name, "run_names": [], "spans": {}})
        own = [run for run in record["run_names"] if trained_by.setdefault(run, name) == name]
        into["run_names"] = sorted({*into["run_names"], *own})
        for holder, (start, end) in record["spans"].items():
            spans = merged[worked_for.setdefault(holder, name)]["spans"]
            before = spans.get(holder, [start, end])
            spans[holder] = [min(start, before[0]), max(end, before[1])]
    seconds = {_run_name(row): row.train_seconds + row.eval_seconds for row in rows if row.finished}
    for record in merged.values():
        if "spans" in record:
            record["runs"] = len(record["run_names"])
            record["wall_hours"] = covered_seconds(map(tuple, record["spans"].values())) / 3600
            record["workers"] = len(record["spans"])
            record["run_hours"] = sum(seconds[name] for name in record["run_names"]) / 3600
    return list(merged.values())


def epoch_seconds(runs: Path, rows: list[GridRow]) -> dict[RunKey, float]:
    """Each finished run's (``rows``, a grid's results.csv) median training seconds per epoch,
    from its log.csv in ``runs``."""
    medians = {}
    for row in rows:
        if not row.finished:
            continue  # a diverged or failed run has no cost to report, and maybe no log
        log = read_csv(runs / _run_name(row) / LOG_FILE)
        medians[run_key(row)] = statistics.median(
            float(r["seconds"]) for r in log if r["phase"] == "train"
        )
    return medians


def read_earlier(folder: Path) -> tuple[list[GridRow], dict[RunKey, float], list[dict]]:
    """The rows of a folder this script wrote (its results.csv), each finished run's seconds per
    epoch (from its log under ``folder/runs``, else its cell's figure in the folder's
    paper_table.json), and the grid records there."""
    rows = read_rows(folder / RESULTS_FILE)
    record = json.loads((folder / "paper_table.json").read_text())
    cells = {(c["decoder"], c["sampler"]): c["seconds_per_epoch"] for c in record["cells"]}
    logged = [row for row in rows if (folder / "runs" / _run_name(row) / LOG_FILE).exists()]
    from_cells = {
        run_key(row): float(cells[row.key["decoder"], row.key["sampler"]])
        for row in rows
        if row.finished and (row.key["decoder"], row.key["sampler"]) in cells
    }
    return rows, from_cells | epoch_seconds(folder / "runs", logged), record["grids"]


def keep_runs(runs: Path, rows: list[GridRow], out: Path) -> None:
    """Copy the record of each run of ``rows`` (a grid's results.csv) from the grid's ``runs``
    folder to ``out``: the files by which `dans compare` counts it as done, and its log."""
    for row in rows:
        copy_record(runs / _run_name(row), out / _run_name(row))


def copy_record(source: Path, target: Path) -> None:
    """A run's record (its config, metrics, diversity, divergence and log; no checkpoint) from
    the run folder ``source`` to ``target``, made when there is anything to copy."""
    for file in RUN_RECORD:
        if (source / file).exists():
            target.mkdir(parents=True, exist_ok=True)
            write_atomic(target / file, (source / file).read_bytes())


def _run_name(row: GridRow) -> str:
    """A result row's folder under a grid's runs/."""
    return Cell(*run_key(row)).name


if __name__ == "__main__":
    main()
