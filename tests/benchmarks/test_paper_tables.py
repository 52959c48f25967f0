"""benchmarks/paper_tables.py: grid records merged across worker processes and machines, run records
kept and read back, and the table's cells against hand-worked figures."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from scripts import load_script

from dans.experiments.compare import KEY_COLUMNS
from dans.experiments.results import render_csv, result_columns, results_csv

paper_tables = load_script("paper_tables")


def test_records_of_one_grid_unite_their_runs_and_workers(result_row):
    rows = [
        result_row("uniform", 1, 0.3),
        result_row("uniform", 2, 0.3),
        result_row("mcns", 1, 0.3),
    ]
    earlier = {
        "grid": "g",
        "run_names": ["uniform-distmult-seed1"],
        "spans": {"a": [0.0, 100.0]},
    }
    # Rendered again later: worker a went on to 150, and worker b overlaps it by 50 s.
    later = {
        "grid": "g",
        "run_names": ["uniform-distmult-seed1", "uniform-distmult-seed2"],
        "spans": {"a": [0.0, 150.0], "b": [100.0, 400.0]},
    }
    other = {"grid": "h", "run_names": ["mcns-distmult-seed1"], "spans": {"c": [0.0, 36.0]}}
    merged = paper_tables.merge_records([earlier, later, other], rows)
    assert [record["grid"] for record in merged] == ["g", "h"]
    g, h = merged
    assert g["run_names"] == ["uniform-distmult-seed1", "uniform-distmult-seed2"]
    assert g["spans"] == {"a": [0.0, 150.0], "b": [100.0, 400.0]}
    assert g["workers"] == 2 and g["wall_hours"] == pytest.approx(400 / 3600)
    # Two runs of 100 s training and 20 s evaluation each.
    assert g["runs"] == 2 and g["run_hours"] == pytest.approx(240 / 3600)
    assert h["runs"] == 1 and h["wall_hours"] == pytest.approx(0.01)


def test_a_worker_of_a_renamed_grid_counts_with_the_name_it_had_first(result_row):
    rows = [result_row("uniform", 1, 0.3), result_row("uniform", 2, 0.3)]
    before = {"grid": "old", "run_names": ["uniform-distmult-seed1"], "spans": {"a": [0.0, 100.0]}}
    # The folder renamed, its worker records with it: a went on to 150 and b trained seed 2.
    after = {
        "grid": "new",
        "run_names": ["uniform-distmult-seed1", "uniform-distmult-seed2"],
        "spans": {"a": [0.0, 150.0], "b": [200.0, 300.0]},
    }
    old, new = paper_tables.merge_records([before, after], rows)
    assert old["spans"] == {"a": [0.0, 150.0]} and old["run_names"] == ["uniform-distmult-seed1"]
    assert new["spans"] == {"b": [200.0, 300.0]} and new["run_names"] == ["uniform-distmult-seed2"]
    assert new["wall_hours"] == pytest.approx(100 / 3600)


def test_joining_a_grid_replaces_its_runs_in_place_and_appends_the_new(result_row):
    earlier = [result_row("uniform", 1, 0.3), result_row("dans", 1, 0.4)]
    # The grid's results.csv lists DANS first, reruns uniform and adds DANS seed 2.
    new = [result_row("dans", 2, 0.5), result_row("uniform", 1, 0.35)]
    rows = paper_tables.joined(earlier, new)
    assert [(row.key["sampler"], row.seed, row.test["mrr"]) for row in rows] == [
        ("uniform", 1, 0.35),
        ("dans", 1, 0.4),
        ("dans", 2, 0.5),
    ]


def test_a_run_copied_into_another_grid_stays_with_the_grid_that_trained_it(result_row):
    rows = [result_row("mcns", 1, 0.4, device="cuda"), result_row("uniform", 1, 0.3)]
    gpu = {"grid": "gpu", "run_names": ["mcns-distmult-seed1"], "spans": {"a": [0.0, 10.0]}}
    # The CPU grid's folder got the GPU run's record, so its results list that run too.
    cpu = {
        "grid": "cpu",
        "run_names": ["mcns-distmult-seed1", "uniform-distmult-seed1"],
        "spans": {"b": [0.0, 20.0]},
    }
    gpu_record, cpu_record = paper_tables.merge_records([gpu, cpu], rows)
    assert gpu_record["run_names"] == ["mcns-distmult-seed1"]
    assert cpu_record["run_names"] == ["uniform-distmult-seed1"]


def test_a_record_without_workers_stands_alone_under_its_name():
    legacy = {"grid": "old", "runs": 30, "wall_hours": 5.0}
    merged = paper_tables.merge_records([legacy], [])
    assert merged == [legacy]
    again = {"grid": "old", "run_names": [], "spans": {}}
    with pytest.raises(SystemExit, match="grid old: recorded without its workers"):
        paper_tables.merge_records([legacy, again], [])


def _write_run(runs: Path, name: str, epoch_seconds: list[float]) -> None:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("seed = 1\n")
    (folder / "metrics.json").write_text("{}\n")
    (folder / "checkpoint.pt").write_bytes(b"weights")
    log = [
        {"epoch": str(i), "phase": "train", "seconds": repr(s)}
        for i, s in enumerate(epoch_seconds, 1)
    ]
    (folder / "log.csv").write_text(render_csv(log, ["epoch", "phase", "seconds"]))


def test_kept_runs_are_records_without_checkpoints_and_give_their_median_epoch(
    tmp_path, result_row
):
    grid = tmp_path / "grid"
    rows = [result_row("uniform", 1, 0.3), result_row("mcns", 1, 0.4)]
    # A median: the epoch during which the grid stood paused (60 s) weighs as any slow one.
    _write_run(grid / "runs", "uniform-distmult-seed1", [5.0, 60.0, 4.0, 5.5, 6.0])
    _write_run(grid / "runs", "mcns-distmult-seed1", [2.0, 3.0])
    out = tmp_path / "out"
    paper_tables.keep_runs(grid / "runs", rows, out / "runs")
    kept = out / "runs" / "uniform-distmult-seed1"
    assert sorted(path.name for path in kept.iterdir()) == [
        "config.toml",
        "log.csv",
        "metrics.json",
    ]
    # What read_earlier finds in a folder the script wrote: rows, logs, and grid records.
    (out / "results.csv").write_text(results_csv(rows, result_columns(KEY_COLUMNS)))
    cells = [{"decoder": "distmult", "sampler": "uniform", "seconds_per_epoch": "9.9"}]
    record = {"cells": cells, "grids": [{"grid": "grid"}]}
    (out / "paper_table.json").write_text(json.dumps(record))
    read_rows, epochs, grids = paper_tables.read_earlier(out)
    assert read_rows == rows
    assert epochs == {("uniform", "distmult", 1): 5.5, ("mcns", "distmult", 1): 2.5}
    assert grids == [{"grid": "grid"}]
    # A run whose log was not kept takes its cell's figure.
    (kept / "log.csv").unlink()
    assert paper_tables.read_earlier(out)[1][("uniform", "distmult", 1)] == 9.9


def test_a_graph_without_published_figures_gets_its_table_with_none_beside_it(
    tmp_path, result_row, monkeypatch
):
    grid = tmp_path / "fb15k-237_complex"
    rows = [result_row("uniform", seed, 0.3 + seed / 100) for seed in (1, 2, 3)]
    rows = [replace(row, key={"sampler": "uniform", "decoder": "complex"}) for row in rows]
    (grid / "runs").mkdir(parents=True)
    (grid / "results.csv").write_text(results_csv(rows, result_columns(KEY_COLUMNS)))
    for seed in (1, 2, 3):
        _write_run(grid / "runs", f"uniform-complex-seed{seed}", [4.0, 5.0])
    out = tmp_path / "out"
    argv = ["paper_tables.py", "--dataset", "fb15k-237", str(grid), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    paper_tables.main()
    table = (out / "paper_table.md").read_text()
    # MRR .320 ± .010 over seeds 1-3 (.31, .32, .33), and a dash where the paper's figure goes.
    assert "| uniform | 3 | **.320 ± .010** | – |" in table
