"""The grid runner on its own: columns, summaries after every run, skipped finished runs."""

import pytest

import dans
from dans.cli import build_parser
from dans.errors import DansError
from dans.experiments import grids
from dans.experiments.grids import Grid, GridOptions, GridRun, seed_list
from dans.experiments.results import OUTCOME_COLUMNS, read_rows

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = dans.TrainConfig(encoder="lookup", dim=8, epochs=1, eval_every=1, device="cpu")


def _grid(summaries, lrs=(0.01, 0.003)):
    runs = [GridRun(f"lr{lr}", f"lr {lr}", FAST.replace(lr=lr), {"lr": repr(lr)}) for lr in lrs]
    return Grid(runs, ("lr",), lambda rows, out: summaries.append([row.key["lr"] for row in rows]))


def test_columns_name_the_run_then_the_seed_then_the_outcome():
    assert _grid([]).columns == ("dataset", "lr", "seed", *OUTCOME_COLUMNS)


def test_the_summary_follows_every_run_and_a_rerun_trains_nothing(tmp_path, umls):
    summaries, said = [], []
    options = GridOptions(progress=False, report=said.append)
    rows = _grid(summaries).run(tmp_path, options)
    # Once after each run, with the rows finished so far, and once at the end.
    assert summaries == [["0.01"], ["0.01", "0.003"], ["0.01", "0.003"]]
    assert [row.key["lr"] for row in rows] == ["0.01", "0.003"]
    # How many runs, then each run as it ends with the time left at the pace so far.
    assert said[0] == "2 of 2 runs to train, 1 at a time; the time left is estimated after each run"
    assert said[1].startswith("[1/2] lr 0.01: test MRR ") and said[1].endswith(" min left")
    assert said[2].startswith("[2/2] lr 0.003: test MRR ") and "left" not in said[2]
    assert read_rows(tmp_path / "results.csv") == rows
    assert all(row.finished and row.dataset == "umls" for row in rows)
    summaries.clear()
    said.clear()
    assert _grid(summaries).run(tmp_path, options) == rows
    assert said == [
        "[1/2] lr 0.01: done before",
        "[2/2] lr 0.003: done before",
        "0 of 2 runs to train, 1 at a time (2 done before)",
    ]
    assert summaries == [["0.01", "0.003"]]


def test_a_run_finished_on_another_device_is_done_and_an_unfinished_one_is_refused(tmp_path, umls):
    options = GridOptions(progress=False, report=lambda line: None)
    rows = _grid([], lrs=(0.01,)).run(tmp_path, options)
    run_dir = tmp_path / "runs" / "lr0.01"
    # As a GPU machine would have left it: the same settings but its device.
    (run_dir / "config.toml").write_text(FAST.replace(lr=0.01, device="cuda").to_toml())
    said = []
    again = GridOptions(progress=False, report=said.append)
    assert _grid([], lrs=(0.01,)).run(tmp_path, again) == rows
    assert said[0] == "[1/1] lr 0.01: done before"
    # Unfinished, it would resume on that device: refused like any other setting.
    (run_dir / "metrics.json").unlink()
    with pytest.raises(DansError, match=r"a run with other settings \(device\)"):
        _grid([], lrs=(0.01,)).run(tmp_path, options)
    (run_dir / "config.toml").write_text(FAST.replace(lr=0.02, device="cuda").to_toml())
    (run_dir / "diverged.txt").write_text("diverged\n")
    with pytest.raises(DansError, match=r"a run with other settings \(lr\)"):
        _grid([], lrs=(0.01,)).run(tmp_path, options)


def test_a_bad_setting_stops_the_grid_before_anything_is_written(tmp_path):
    # Each value is in range; together they are not (only the RGCN passes messages).
    bad = FAST.replace(subgraph_edges=100)
    runs = [GridRun("bad", "bad", bad, {"lr": repr(bad.training.lr)})]
    with pytest.raises(dans.DansError, match="--subgraph-edges needs --encoder rgcn"):
        Grid(runs, ("lr",), lambda rows, out: None).run(tmp_path / "grid")
    assert not (tmp_path / "grid").exists()


def test_seeds_are_a_count_from_one_or_the_seeds_themselves():
    assert seed_list(3) == [1, 2, 3]
    assert seed_list((7, 2)) == [7, 2]
    with pytest.raises(DansError, match="--seeds must be at least 1"):
        seed_list(0)
    with pytest.raises(DansError, match="--seeds must name distinct seeds"):
        seed_list((1, 1))


def test_the_seeds_flag_takes_a_count_or_a_list():
    parser = build_parser()[0]
    common = ["compare", "--out", "g", "--samplers", "uniform"]
    assert parser.parse_args([*common, "--seeds", "3"]).seeds == 3
    assert parser.parse_args([*common, "--seeds", "2,5,9"]).seeds == (2, 5, 9)
    with pytest.raises(SystemExit):
        parser.parse_args([*common, "--seeds", "two"])


def test_the_time_left_is_the_pace_so_far_times_the_runs_left():
    # 600 s for 2 runs: 300 s a run, so 3 more take 900 s.
    assert grids._time_left(600.0, 2, 3) == "; about 15 min left"
    assert grids._time_left(61.0, 1, 1) == "; about 2 min left"  # rounded up
    assert grids._time_left(600.0, 2, 0) == ""


def test_the_plan_estimates_from_the_runs_done_before():
    # Two runs took 120 s and 240 s: 180 s a run, so 4 more two at a time take 6 minutes.
    assert grids._plan(6, 4, 2, [120.0, 240.0]) == (
        "4 of 6 runs to train, 2 at a time (2 done before; about 6 min at their pace)"
    )
    assert grids._plan(3, 3, 1, []) == (
        "3 of 3 runs to train, 1 at a time; the time left is estimated after each run"
    )
    assert grids._plan(2, 0, 1, [60.0, 60.0]) == "0 of 2 runs to train, 1 at a time (2 done before)"
