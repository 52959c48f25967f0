"""benchmarks/paper_tables.py: grid records merged across worker processes and machines, run records
kept and read back, and the table's cells against hand-worked figures."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from dans.experiments.grids import render_csv
from dans.experiments.tables import three

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "paper_tables.py"
spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
paper_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper_tables)


def _row(sampler, seed, mrr, device="cpu"):
    return {
        "sampler": sampler,
        "decoder": "distmult",
        "seed": str(seed),
        "status": "ok",
        "mrr": repr(mrr),
        "hits@1": repr(mrr - 0.05),
        "ndcg@5": repr(mrr + 0.01),
        "train_seconds": "100.0",
        "eval_seconds": "20.0",
        "peak_memory_mb": "1000",
        "device": device,
    }


def test_records_of_one_grid_unite_their_runs_and_workers():
    rows = [_row("uniform", 1, 0.3), _row("uniform", 2, 0.3), _row("mcns", 1, 0.3)]
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


def test_a_run_copied_into_another_grid_stays_with_the_grid_that_trained_it():
    rows = [_row("mcns", 1, 0.4, device="cuda"), _row("uniform", 1, 0.3)]
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


def test_kept_runs_are_records_without_checkpoints_and_give_their_median_epoch(tmp_path):
    grid = tmp_path / "grid"
    rows = [_row("uniform", 1, 0.3), _row("mcns", 1, 0.4)]
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
    (out / "results.csv").write_text(render_csv(rows, list(rows[0])))
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


def test_cells_give_their_seeds_tests_devices_and_costs():
    uniform = [0.30, 0.31, 0.32]
    mcns = [0.35, 0.37, 0.36]
    rows = [_row("uniform", s, m) for s, m in enumerate(uniform, 1)]
    rows += [_row("mcns", s, m, device="cuda") for s, m in enumerate(mcns, 1)]
    rows += [_row("kbgan", 1, 0.2), _row("kbgan", 2, 0.25)]
    epochs = {paper_tables._run_key(row): float(row["seed"]) for row in rows}
    paper = {"distmult": {"mcns": {"mrr": [0.376, 0.01]}, "sans": {"mrr": [0.349, 0.01]}}}
    samplers = ["uniform", "mcns", "kbgan", "sans", "cake"]
    markdown, figures = paper_tables.paper_table(
        rows, paper, samplers, ["distmult", "rotate"], 3, epochs
    )
    # By hand: MCNS's differences .05, .06, .04 give t = 5 sqrt(3) on 2 degrees of freedom, so
    # p = 1 - t / sqrt(t^2 + 2); KBGAN's -.10 and -.06 (seeds 1 and 2) give t = -4 on 1, so
    # p = 1 - 2 atan(4) / pi = .156. Holm doubles the smaller of the two tests.
    t = 5 * math.sqrt(3)
    p_mcns = 2 * (1 - t / math.sqrt(t**2 + 2))
    p_kbgan = 1 - 2 * math.atan(4) / math.pi
    lines = {line.split(" | ")[0]: line for line in markdown.splitlines()}
    assert lines["| mcns"].startswith("| mcns | 3 | ")
    assert "| .376 | " in lines["| mcns"]
    # p, where it ran, the mean of its runs' median epochs (seeds 1, 2, 3), peak memory.
    assert lines["| mcns"].endswith(f"| {three(p_mcns)} | cuda | 2.0 | 1000 |")
    assert lines["| kbgan"].startswith("| kbgan | 2 (incomplete) | ")
    assert lines["| kbgan"].endswith(f"| {three(p_kbgan)} | cpu | 1.5 | 1000 |")
    # Not run, but in the paper: a row of dashes beside the paper's value. In neither: no row.
    assert lines["| sans"].startswith("| sans | 0 | – | .349 | ")
    assert lines["| sans"].endswith("| – | – | – | – |")
    assert "| cake" not in lines
    assert "Not run yet: RotatE." in markdown
    by_sampler = {figure["sampler"]: figure for figure in figures}
    assert by_sampler["mcns"]["ours"]["mrr"] == mcns
    assert by_sampler["mcns"]["p_holm_vs_uniform"] == pytest.approx(p_mcns)
    assert by_sampler["mcns"]["devices"] == ["cuda"]
    assert by_sampler["sans"]["seeds"] == []
    assert "cake" not in by_sampler
