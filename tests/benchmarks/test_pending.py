"""benchmarks/pending.py: which planned runs are done, copied or still to train, the estimate of
their time against hand-worked figures, and run records restored so that a grid counts them as
done."""

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from scripts import load_script

import dans
from dans.experiments import paper
from dans.experiments.ablate import ablation_grid
from dans.experiments.compare import KEY_COLUMNS, comparison_grid
from dans.experiments.grids import finished
from dans.experiments.results import result_columns, results_csv
from dans.experiments.sweep import settings_grid
from dans.rundir import CONFIG_FILE, DIVERGED_FILE, METRICS_FILE

pending = load_script("pending")

FLAGS = "--dim 8 --epochs 25 --eval-every 10 --device cpu"


def _plan():
    """A table of uniform and DANS over 2 seeds, DANS's ablation and an N_s sweep, seed 1 and 2,
    as their commands build them."""
    return [
        pending.PlannedGrid.of(
            "table",
            "table",
            f"dans compare --samplers uniform,dans --decoders distmult --seeds 2 {FLAGS} "
            "--out GRIDS/table",
        ),
        pending.PlannedGrid.of(
            "ablation", "figure2", f"dans ablate --seeds 1 {FLAGS} --out GRIDS/ablation"
        ),
        pending.PlannedGrid.of(
            "sweep",
            "figure2",
            f"dans sweep --param negatives --values 5,20 --seeds 2 {FLAGS} --out GRIDS/sweep",
        ),
    ]


def test_a_planned_grid_is_the_grid_its_command_trains():
    table, ablation, sweep = _plan()
    base = dans.TrainConfig(dim=8, epochs=25, eval_every=10, device="cpu")
    assert (table.folder, ablation.folder, sweep.folder) == ("table", "ablation", "sweep")
    assert table.base == base
    expected = comparison_grid(base, ["uniform", "dans"], ["distmult"], 2).runs
    assert [(r.name, r.config) for r in table.grid.runs] == [(r.name, r.config) for r in expected]
    expected = ablation_grid(base.replace(sampler="dans"), 1).runs
    assert [(r.name, r.config) for r in ablation.grid.runs] == [
        (r.name, r.config) for r in expected
    ]
    expected = settings_grid(base.replace(sampler="dans"), {"negatives": ["5", "20"]}, 2).runs
    assert [(r.name, r.config) for r in sweep.grid.runs] == [(r.name, r.config) for r in expected]


def test_the_commands_of_a_part_of_the_plan_in_order():
    text = pending.commands("figure2")
    lines = text.splitlines()
    assert lines[0] == lines[-1] == "```"
    assert [line.split()[1] for line in lines[1:-1]] == ["ablate", "sweep", "sweep"] * 3
    assert all(line.split()[-1].startswith("GRIDS/") for line in lines[1:-1])
    # Figure 2 on UMLS (its defaults), then on the large graphs' recipes, 3 seeds each.
    sources = [line.split()[2:4] for line in lines[1:-1]]
    assert (
        sources
        == [["--dataset", "umls"]] * 3
        + [["--recipe", "wn18rr"]] * 3
        + [["--recipe", "nell-995"]] * 3
    )
    assert all("--seeds 3" in line for line in lines[1:-1])
    with pytest.raises(ValueError, match="no planned grid"):
        pending.commands("figure3")
    # UMLS's tables come first in the plan: one grid, every sampler and decoder, 5 seeds, the
    # negatives measured.
    umls = pending.commands("umls-table").splitlines()[1:-1]
    assert [pending.plan()[0].command] == umls
    for line in umls:
        assert "--dataset umls" in line and "--seeds 5" in line and "--diversity" in line
        assert "--decoders distmult,complex,rotate" in line
        assert line.endswith("--out GRIDS/umls_table")
        samplers = line.split("--samplers ")[1].split()[0].split(",")
        assert samplers == [*paper.SAMPLERS, "dans-authors-code", "all-entities"]


def _keep_record(folder: Path, run) -> None:
    """A finished run's record: its config and metrics."""
    folder.mkdir(parents=True)
    (folder / CONFIG_FILE).write_text(run.config.to_toml())
    (folder / METRICS_FILE).write_text("{}")


@pytest.fixture
def results(tmp_path, result_row):
    """The table's results: uniform seed 1 finished, seed 2 diverged, DANS seed 1 finished
    (7,200 s) with its record kept."""
    results = tmp_path / "results"
    rows = [
        result_row("uniform", 1, 0.3),
        replace(result_row("uniform", 2, 0.3), status="diverged"),
        replace(result_row("dans", 1, 0.3), train_seconds=7000.0, eval_seconds=200.0),
    ]
    (results / "table").mkdir(parents=True)
    csv = results_csv(rows, result_columns(KEY_COLUMNS))
    (results / "table" / "results.csv").write_text(csv)
    table_runs = {run.name: run for run in _plan()[0].grid.runs}
    _keep_record(
        results / "table" / "runs" / "dans-distmult-seed1", table_runs["dans-distmult-seed1"]
    )
    return results


def _states(found):
    return {(status.grid.folder, status.run.name): status.state for status in found}


def test_runs_are_done_copied_from_equal_settings_or_trained_once(results):
    found = pending.statuses(_plan(), results)
    assert _states(found) == {
        ("table", "uniform-distmult-seed1"): "done",
        ("table", "uniform-distmult-seed2"): "done",  # diverged: not retried
        ("table", "dans-distmult-seed1"): "done",
        ("table", "dans-distmult-seed2"): "train",
        ("ablation", "G_E-seed1"): "train",
        ("ablation", "G_R-seed1"): "train",
        ("ablation", "G_ER-seed1"): "train",
        ("ablation", "DANS-seed1"): "copy",  # the table's DANS, seed 1
        ("sweep", "negatives=5-seed1"): "train",
        ("sweep", "negatives=5-seed2"): "train",
        ("sweep", "negatives=20-seed1"): "copy",
        ("sweep", "negatives=20-seed2"): "copy",  # trained by the table first
    }
    sources = {(s.grid.folder, s.run.name): s.source for s in found if s.state == "copy"}
    assert sources[("ablation", "DANS-seed1")] == ("table", "dans-distmult-seed1")
    assert sources[("sweep", "negatives=20-seed2")] == ("table", "dans-distmult-seed2")


def test_a_done_run_without_its_record_is_trained_again_elsewhere(results):
    (results / "table" / "runs" / "dans-distmult-seed1" / METRICS_FILE).unlink()
    found = pending.statuses(_plan(), results)
    states = _states(found)
    assert states["table", "dans-distmult-seed1"] == "done"
    assert states["ablation", "DANS-seed1"] == "train"
    assert states["sweep", "negatives=20-seed1"] == "copy"  # from the ablation's


def test_cost_names_say_what_differs_from_the_grid_base_but_the_seed(results):
    found = pending.statuses(_plan(), results)
    names = {(s.grid.folder, s.run.name): s.cost for s in found}
    assert names["ablation", "G_E-seed1"] == (
        "umls distmult dans dans_film=False dans_pathways=entity"
    )
    assert names["sweep", "negatives=5-seed1"] == names["sweep", "negatives=5-seed2"]
    assert names["sweep", "negatives=5-seed2"] == "umls distmult dans negatives=5"
    assert names["table", "dans-distmult-seed2"] == "umls distmult dans"
    # One timing per name, in plan order.
    assert [s.cost for s in pending.to_train(found)] == [
        "umls distmult dans",
        "umls distmult dans dans_film=False dans_pathways=entity",
        "umls distmult dans dans_film=False dans_pathways=relation",
        "umls distmult dans dans_film=False",
        "umls distmult dans negatives=5",
    ]


def _timings():
    epochs = {
        "umls distmult dans": 2.0,
        "umls distmult dans dans_film=False dans_pathways=entity": 1.0,
        "umls distmult dans dans_film=False dans_pathways=relation": 1.0,
        "umls distmult dans dans_film=False": 1.0,
        "umls distmult dans negatives=5": 4.0,
    }
    ranking = {"umls distmult": {"valid": 3.0, "test": 5.0}}
    return {"epoch": epochs, "ranking": ranking, "torch": "x"}


def test_a_run_takes_its_epochs_validations_and_test(results):
    found = pending.statuses(_plan(), results)
    status = pending.to_train(found)[0]
    # 25 epochs of 2 s, validations after epochs 10, 20 and the last (3 x 3 s), a test of 5 s.
    assert pending.run_seconds(status, _timings()) == 25 * 2.0 + 3 * 3.0 + 5.0


def test_the_table_counts_each_grid_and_its_hours(results):
    markdown = pending.table(pending.statuses(_plan(), results), _timings())
    rows = {line.split(" | ")[0]: line for line in markdown.splitlines() if line.startswith("|")}
    # DANS seed 2: 64 s. Each ablation variant: 25 + 9 + 5 = 39 s. N_s = 5: 100 + 14 = 114 s.
    assert rows["| table"] == f"| table | `table` | 4 | 3 | 0 | 1 | {64 / 3600:.1f} |"
    assert rows["| ablation"] == "| ablation | `ablation` | 4 | 0 | 1 | 3 | 0.0 |"
    assert rows["| **all**"] == "| **all** | | | | | **6** | **0.1** |"
    assert "| umls distmult dans negatives=5 | 4.0 | 25 | 3.0 | 5.0 | 0.03 | – |" in markdown
    # DANS's runs finished here (7,200 s) stand beside its estimate.
    assert "| umls distmult dans | 2.0 | 25 | 3.0 | 5.0 | 0.02 | 2.00 |" in markdown


def test_restored_records_count_as_done_in_their_grids(results, tmp_path):
    plan = _plan()
    into = tmp_path / "grids"
    found = pending.statuses(plan, results)
    assert pending.restore(found, into, results) == 3  # the table's DANS, copied twice
    runs = {(g.folder, run.name): run for g in plan for run in g.grid.runs}
    for folder, name in [
        ("table", "dans-distmult-seed1"),
        ("ablation", "DANS-seed1"),
        ("sweep", "negatives=20-seed1"),
    ]:
        assert finished(into / folder / "runs" / name, runs[folder, name].config)
    assert not (into / "sweep" / "runs" / "negatives=20-seed2").exists()
    # Once the table has trained DANS seed 2 under the grids' folder, the sweep copies it.
    _keep_record(
        into / "table" / "runs" / "dans-distmult-seed2", runs["table", "dans-distmult-seed2"]
    )
    assert pending.restore(found, into, results) == 1
    assert finished(
        into / "sweep" / "runs" / "negatives=20-seed2", runs["sweep", "negatives=20-seed2"].config
    )
    assert pending.restore(found, into, results) == 0  # records already there are left


def test_measure_times_each_configuration_it_lacks(results, tmp_path, one_thread):
    found = pending.statuses(_plan(), results)
    timings = _timings()
    del timings["epoch"]["umls distmult dans negatives=5"]
    save = tmp_path / "pending.json"
    pending.measure(found, timings, save)
    assert timings["epoch"]["umls distmult dans"] == 2.0  # timed before: left
    assert timings["epoch"]["umls distmult dans negatives=5"] > 0
    assert json.loads(save.read_text())["epoch"] == timings["epoch"]
    # Rankings lacking: timed on the first configuration of the graph and decoder, whose epoch
    # is left as it was.
    del timings["ranking"]["umls distmult"]
    epochs = dict(timings["epoch"])
    pending.measure(found, timings, save)
    assert timings["epoch"] == epochs
    assert set(timings["ranking"]["umls distmult"]) == {"valid", "test"}
    assert min(timings["ranking"]["umls distmult"].values()) > 0


def test_collect_keeps_each_ablation_and_sweep_with_its_ended_runs(tmp_path):
    plan, grids, results = _plan(), tmp_path / "grids", tmp_path / "kept"
    runs = {(g.folder, run.name): run for g in plan for run in g.grid.runs}
    ablation = grids / "ablation"
    _keep_record(ablation / "runs" / "G_E-seed1", runs["ablation", "G_E-seed1"])
    (ablation / "runs" / "G_E-seed1" / "checkpoint.pt").write_bytes(b"weights")
    # G_R has only begun: its checkpoint, no metrics.
    (ablation / "runs" / "G_R-seed1").mkdir()
    (ablation / "runs" / "G_R-seed1" / "checkpoint.pt").write_bytes(b"weights")
    # G_ER diverged: ended too, with its config and the record of how.
    (ablation / "runs" / "G_ER-seed1").mkdir()
    (ablation / "runs" / "G_ER-seed1" / CONFIG_FILE).write_text("seed = 1\n")
    (ablation / "runs" / "G_ER-seed1" / DIVERGED_FILE).write_text("{}")
    (ablation / "results.csv").write_text("dataset,variant,seed\n")
    (ablation / "table.md").write_text("| variant |\n")
    # A comparison's results go through paper_tables.py, not here.
    (grids / "table").mkdir()
    (grids / "table" / "results.csv").write_text("dataset,sampler,decoder,seed\n")
    assert pending.collect(plan, grids, results) == ["ablation"]
    kept = results / "ablation"
    assert (kept / "table.md").read_text() == "| variant |\n"
    assert (kept / "results.csv").read_text() == "dataset,variant,seed\n"
    assert sorted(p.name for p in (kept / "runs").iterdir()) == ["G_E-seed1", "G_ER-seed1"]
    assert sorted(p.name for p in (kept / "runs" / "G_E-seed1").iterdir()) == [
        CONFIG_FILE,
        METRICS_FILE,
    ]
    assert not (results / "table").exists()


def test_run_plan_trains_each_run_once_and_goes_on_after_a_stop(tmp_path, one_thread):
    flags = "--dim 8 --epochs 1 --device cpu --quiet"
    plan = [
        pending.PlannedGrid.of(
            "table",
            "table",
            f"dans compare --samplers dans --decoders distmult --seeds 1 {flags} --out GRIDS/table",
        ),
        pending.PlannedGrid.of(
            "sweep",
            "figure2",
            f"dans sweep --param negatives --values 5,20 --seeds 1 {flags} --out GRIDS/sweep",
        ),
    ]
    into, results = tmp_path / "grids", tmp_path / "results"
    pending.run_plan(plan, into, results)
    table, sweep = into / "table" / "runs", into / "sweep" / "runs"
    runs = {(g.folder, run.name): run for g in plan for run in g.grid.runs}
    for folder, name in runs:
        assert finished(into / folder / "runs" / name, runs[folder, name].config)
    # N_s = 20 is the table's DANS: copied from the table's grid (a record, no checkpoint).
    copied = sweep / "negatives=20-seed1"
    assert (copied / METRICS_FILE).read_bytes() == (
        table / "dans-distmult-seed1" / METRICS_FILE
    ).read_bytes()
    assert not (copied / "checkpoint.pt").exists()
    assert (sweep / "negatives=5-seed1" / "checkpoint.pt").exists()
    # Stopped before N_s = 5 ended: run again, only that run trains.
    table_metrics = table / "dans-distmult-seed1" / METRICS_FILE
    written = table_metrics.stat().st_mtime_ns
    shutil.rmtree(sweep / "negatives=5-seed1")
    pending.run_plan(plan, into, results)
    assert finished(sweep / "negatives=5-seed1", runs["sweep", "negatives=5-seed1"].config)
    assert table_metrics.stat().st_mtime_ns == written


def test_the_plan_trains_and_times_with_the_dans_commands_allocator(
    monkeypatch, tmp_path, call_log
):
    monkeypatch.setattr(pending, "reuse_freed_memory", call_log.through("allocator"))
    into = []
    monkeypatch.setattr(
        pending, "run_plan", call_log.through("run", lambda _, out: into.append(out))
    )
    monkeypatch.setattr(sys, "argv", ["pending.py", "--run", str(tmp_path)])
    pending.main()
    assert call_log == ["allocator", "run"] and into == [tmp_path]


def test_run_plan_leaves_out_a_grid_whose_results_hold_every_run(tmp_path, monkeypatch, result_row):
    command = f"dans compare --samplers uniform --decoders distmult --seeds 2 {FLAGS}"
    plan = [pending.PlannedGrid.of("table", "table", f"{command} --out GRIDS/table")]
    results = tmp_path / "results"
    (results / "table").mkdir(parents=True)
    commands = []
    monkeypatch.setattr(pending.cli, "main", lambda argv: commands.append(argv) or 0)
    # The kept results list both runs but keep no record of them, as earlier grids' did not.
    both = [result_row("uniform", 1, 0.3), result_row("uniform", 2, 0.3)]
    (results / "table" / "results.csv").write_text(results_csv(both, result_columns(KEY_COLUMNS)))
    pending.run_plan(plan, tmp_path / "grids", results)
    assert commands == []
    # Seed 2 missing from them: the command runs.
    (results / "table" / "results.csv").write_text(
        results_csv(both[:1], result_columns(KEY_COLUMNS))
    )
    pending.run_plan(plan, tmp_path / "grids", results)
    assert [argv[0] for argv in commands] == ["compare"]
