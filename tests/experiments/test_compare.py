"""`dans compare`: the grid, resuming, results.csv, the table's layout and its paired test."""

import json
import math

import pytest

import dans
from dans.cli import main
from dans.errors import ConfigError, DansError, TrainingDiverged
from dans.experiments import grids
from dans.experiments.compare import compare, comparison_grid, render_table
from dans.experiments.grids import GridOptions
from dans.experiments.results import GridRow, read_rows, results_csv
from dans.experiments.tables import holm, latex_table, paired_p_value, three
from dans.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"encoder": "lookup", "dim": 8, "epochs": 1, "device": "cpu", "eval_every": 1}
COLUMNS = comparison_grid(dans.TrainConfig(), ["uniform"], ["distmult"], 1).columns


def _row(sampler, decoder, seed, mrr, hits1, ndcg, status="ok"):
    key = {"sampler": sampler, "decoder": decoder}
    if status != "ok":
        return GridRow(key, seed, status)
    return GridRow(key, seed, dataset="toy", test={"mrr": mrr, "hits@1": hits1, "ndcg@5": ndcg})


def _known_rows():
    # DistMult: uniform MRR .50/.60/.70; dans beats it by .01, .02, .03 on seeds 1..3;
    # self-adv is second in MRR and H@1 but first in NDCG@5.
    return [
        _row("uniform", "distmult", 1, 0.50, 0.40, 0.55),
        _row("uniform", "distmult", 2, 0.60, 0.50, 0.65),
        _row("uniform", "distmult", 3, 0.70, 0.60, 0.75),
        _row("self-adv", "distmult", 1, 0.505, 0.41, 0.70),
        _row("self-adv", "distmult", 2, 0.605, 0.51, 0.70),
        _row("self-adv", "distmult", 3, 0.705, 0.61, 0.70),
        _row("dans", "distmult", 1, 0.51, 0.42, 0.60),
        _row("dans", "distmult", 2, 0.62, 0.52, 0.60),
        _row("dans", "distmult", 3, 0.73, 0.62, 0.60),
        _row("dans", "distmult", 4, 0, 0, 0, status="diverged"),
    ]


def test_table_layout_bold_underline_and_spread():
    lines = render_table(_known_rows()).splitlines()
    assert "Test metrics on toy" in lines[0]
    assert lines[2] == "| sampler | seeds | MRR | H@1 | NDCG@5 | p (uniform) |"
    assert lines[4].startswith("| **DistMult** |")
    uniform, self_adv, dans_row = (line.split(" | ") for line in lines[5:8])
    # Means: MRR uniform .600, self-adv .605, dans .620 (std .100, .100, .110).
    assert uniform[2] == ".600 ± .100"
    assert self_adv[2] == "<u>.605 ± .100</u>"
    assert dans_row[2] == "**.620 ± .110**"
    # NDCG@5: self-adv .700 is best, uniform .650 second, dans .600 third.
    assert self_adv[4] == "**.700 ± .000**"
    assert uniform[4] == "<u>.650 ± .100</u>"
    assert dans_row[4] == ".600 ± .000"
    assert dans_row[1] == "3 (+1 diverged)"


def test_paired_p_value_matches_the_closed_form_for_two_degrees_of_freedom():
    # dans - uniform = .01, .02, .03: mean .02, std .01, t = .02 / (.01 / sqrt 3) = 2 sqrt 3.
    # With 2 degrees of freedom the t CDF is 1/2 + t / (2 sqrt(2 + t^2)).
    t = 2 * math.sqrt(3)
    expected = 2 * (0.5 - t / (2 * math.sqrt(2 + t * t)))
    assert paired_p_value([0.51, 0.62, 0.73], [0.50, 0.60, 0.70]) == pytest.approx(expected)
    table = render_table(_known_rows())
    assert table.splitlines()[7].endswith(f"| {expected:.3f} |".replace("0.", "."))
    # Constant differences and single pairs have no test.
    assert math.isnan(paired_p_value([0.6, 0.7], [0.5, 0.6]))
    assert math.isnan(paired_p_value([0.6], [0.5]))
    assert table.splitlines()[6].endswith("| – |")  # self-adv: always exactly .005 above


def test_a_table_without_uniform_or_nscaching_names_no_test():
    rows = [row for row in _known_rows() if row.key["sampler"] != "uniform"]
    lines = render_table(rows).splitlines()
    assert lines[0] == ("Test metrics on toy, mean ± std over seeds (filtered, realistic ranks).")
    assert lines[2] == "| sampler | seeds | MRR | H@1 | NDCG@5 |"


def test_holm_by_hand():
    # Three tests and one without: .01 x 3 = .03; .03 x 2 = .06; .04 x 1 = .04, raised to .06.
    adjusted = holm([0.01, 0.04, 0.03, math.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_every_sampler_is_tested_against_nscaching_too_and_corrected_across_the_table():
    rows = _known_rows()[:-1]
    nscaching = (0.52, 0.61, 0.75)
    rows += [_row("nscaching", "distmult", s, m, 0, 0) for s, m in enumerate(nscaching, 1)]
    lines = render_table(rows).splitlines()
    assert lines[2].endswith("| p (uniform) | p (nscaching) |")
    # Five distinct tests: uniform against NSCaching is counted once, not from both rows.
    raw = {
        ("self-adv", "uniform"): math.nan,
        ("dans", "uniform"): paired_p_value([0.51, 0.62, 0.73], [0.50, 0.60, 0.70]),
        ("nscaching", "uniform"): paired_p_value(nscaching, [0.50, 0.60, 0.70]),
        ("self-adv", "nscaching"): paired_p_value([0.505, 0.605, 0.705], nscaching),
        ("dans", "nscaching"): paired_p_value([0.51, 0.62, 0.73], nscaching),
    }
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    dans_row = next(line for line in lines if line.startswith("| dans |")).split(" | ")
    assert dans_row[-2] == three(adjusted["dans", "uniform"])
    assert dans_row[-1].rstrip(" |") == three(adjusted["dans", "nscaching"])
    assert adjusted["dans", "uniform"] > raw["dans", "uniform"]  # the correction did something
    uniform_row = next(line for line in lines if line.startswith("| uniform |")).split(" | ")
    nscaching_row = next(line for line in lines if line.startswith("| nscaching |")).split(" | ")
    assert (
        uniform_row[-1].rstrip(" |") == nscaching_row[-2] == three(adjusted["nscaching", "uniform"])
    )


def test_tiny_p_values_are_printed_as_a_bound():
    rows = [_row("uniform", "distmult", seed, 0.5 + seed / 10, 0, 0) for seed in (1, 2, 3)]
    rows += [
        _row("dans", "distmult", seed, 0.6 + seed / 10 + seed * 1e-5, 0, 0) for seed in (1, 2, 3)
    ]
    assert paired_p_value([r.test["mrr"] for r in rows[3:]], [0.6, 0.7, 0.8]) < 0.001
    assert render_table(rows).splitlines()[6].endswith("| <.001 |")


def test_the_results_columns_name_the_cell_then_the_outcome():
    assert COLUMNS[:4] == ("dataset", "sampler", "decoder", "seed")
    assert COLUMNS[4:6] == ("status", "mrr")


def test_csv_round_trip(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(results_csv(_known_rows(), COLUMNS))
    assert path.read_text().splitlines()[:2] == [
        ",".join(COLUMNS),
        "toy,uniform,distmult,1,ok,0.5,,0.4,,,0.55" + "," * (len(COLUMNS) - 11),
    ]
    assert read_rows(path) == _known_rows()


def test_compare_runs_the_grid_and_resumes(tmp_path, umls):
    config = dans.TrainConfig(**FAST)
    out = tmp_path / "grid"
    said = []
    rows = compare(
        config, ["uniform", "self-adv"], ["distmult"], 2, out, GridOptions(False, said.append)
    )
    assert [(r.key["sampler"], r.seed, r.status) for r in rows] == [
        ("uniform", 1, "ok"),
        ("uniform", 2, "ok"),
        ("self-adv", 1, "ok"),
        ("self-adv", 2, "ok"),
    ]
    assert read_rows(out / "results.csv") == rows
    for row in rows:
        run_dir = out / "runs" / f"{row.key['sampler']}-distmult-seed{row.seed}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert row.test == {name: metrics["test"][name] for name in row.test}
        assert len(row.test) == 6 and row.valid_mrr == metrics["valid"]["mrr"]
        assert (row.epochs, row.best_epoch) == (metrics["epochs"], metrics["best_epoch"])
        assert row.dataset == "umls" and row.device == "cpu"
    assert "**DistMult**" in (out / "table.md").read_text()
    assert said[0] == "4 of 4 runs to train, 1 at a time; the time left is estimated after each run"
    assert all("test MRR" in line for line in said[1:])
    # A second call redoes nothing; a run whose metrics are gone is redone alone.
    (out / "runs" / "self-adv-distmult-seed1" / "metrics.json").unlink()
    said.clear()
    again = compare(
        config, ["uniform", "self-adv"], ["distmult"], 2, out, GridOptions(False, said.append)
    )
    assert [line.endswith("done before") for line in said] == [True, True, True, False, False]
    assert said[3].startswith("1 of 4 runs to train, 1 at a time (3 done before; about ")
    assert said[3].endswith(" min at their pace)")
    assert said[-1].startswith("[3/4] self-adv + distmult, seed 1: test MRR ")
    # The same seed gives the same run (its time and memory are the machine's).
    assert [row.without_machine() for row in again] == [row.without_machine() for row in rows]


def test_parallel_jobs_give_the_runs_of_one_job(tmp_path, umls):
    config = dans.TrainConfig(**FAST)
    one = compare(
        config,
        ["uniform", "self-adv"],
        ["distmult"],
        1,
        tmp_path / "one",
        GridOptions(False, print),
    )
    said = []
    two = compare(
        config,
        ["uniform", "self-adv"],
        ["distmult"],
        1,
        tmp_path / "two",
        GridOptions(False, said.append, 2),
    )
    assert [row.without_machine() for row in two] == [row.without_machine() for row in one]
    assert said[0].startswith("2 of 2 runs to train, 2 at a time;")
    assert sorted(line.split(": test MRR ")[0] for line in said[1:]) == [
        "[1/2] uniform + distmult, seed 1",
        "[2/2] self-adv + distmult, seed 1",
    ]
    assert read_rows(tmp_path / "two" / "results.csv") == two


def test_compare_refuses_a_finished_run_of_other_settings(tmp_path, umls):
    out = tmp_path / "grid"
    compare(
        dans.TrainConfig(**FAST),
        ["uniform"],
        ["distmult"],
        1,
        out,
        GridOptions(False, lambda _: None),
    )
    other = dans.TrainConfig(**{**FAST, "lr": 0.01})
    with pytest.raises(DansError, match="lr"):
        compare(other, ["uniform"], ["distmult"], 1, out, GridOptions(False, lambda _: None))


def test_compare_checks_every_name_before_training(tmp_path):
    with pytest.raises(ConfigError, match="no-such"):
        compare(dans.TrainConfig(**FAST), ["uniform", "no-such"], ["distmult"], 1, tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_a_diverged_run_is_recorded_and_not_retried(tmp_path, umls, monkeypatch):
    real_run = grids.run_training

    def diverging(config, out, **kwargs):
        if config.runtime.seed == 2:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.toml").write_text(config.to_toml())
            raise TrainingDiverged("training diverged: 20 steps in a row")
        return real_run(config, out, **kwargs)

    monkeypatch.setattr(grids, "run_training", diverging)
    out = tmp_path / "grid"
    rows = compare(
        dans.TrainConfig(**FAST), ["uniform"], ["distmult"], 2, out, GridOptions(False, print)
    )
    assert [r.status for r in rows] == ["ok", "diverged"]
    assert "diverged" in (out / "runs" / "uniform-distmult-seed2" / "diverged.txt").read_text()
    said = []
    compare(
        dans.TrainConfig(**FAST), ["uniform"], ["distmult"], 2, out, GridOptions(False, said.append)
    )
    assert all(line.endswith("done before") for line in said[:-1])
    assert said[-1] == "0 of 2 runs to train, 1 at a time (2 done before)"


def test_cli_compare(tmp_path, capsys, umls):
    out = tmp_path / "grid"
    argv = ["compare", "--samplers", "uniform,popularity", "--decoders", "distmult"]
    argv += ["--seeds", "1", "--out", str(out), "--quiet", "--encoder", "lookup", "--dim", "8"]
    argv += ["--epochs", "1", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| uniform | 1 |" in printed and "| popularity | 1 |" in printed
    assert "2 runs in" in printed
    assert len(read_rows(out / "results.csv")) == 2
    assert (out / "table.tex").read_text() == latex_table((out / "table.md").read_text())
    assert main([*argv, "--format", "latex"]) == 0
    assert "\\begin{tabular}{lrrrrr}" in capsys.readouterr().out


def test_cli_compare_has_no_single_sampler_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--out", str(tmp_path), "--sampler", "dans"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_a_grid_shows_its_progress(tmp_path, capsys, umls):
    compare(
        dans.TrainConfig(**FAST),
        ["uniform"],
        ["distmult"],
        2,
        tmp_path,
        GridOptions(True, print, 2),
    )
    err = capsys.readouterr().err
    assert "grid: 100%" in err and "2/2" in err


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing may catch it."""


def test_a_killed_grid_resumes_its_unfinished_run_to_the_uninterrupted_table(
    tmp_path, umls, monkeypatch
):
    config = dans.TrainConfig(**{**FAST, "epochs": 3, "encoder": "rgcn"})
    whole = compare(
        config, ["nscaching"], ["distmult"], 2, tmp_path / "whole", GridOptions(False, print)
    )
    out = tmp_path / "grid"
    real = Trainer.train_epoch

    def train_epoch(self, sampler):
        if self.config.runtime.seed == 2 and self.epoch == 2:
            raise Killed
        return real(self, sampler)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", train_epoch)
        with pytest.raises(Killed):
            compare(config, ["nscaching"], ["distmult"], 2, out, GridOptions(False, print))
    assert len(read_rows(out / "results.csv")) == 1
    said = []
    rows = compare(config, ["nscaching"], ["distmult"], 2, out, GridOptions(False, said.append))
    assert said[0].endswith("done before")
    assert [row.without_machine() for row in rows] == [row.without_machine() for row in whole]
    assert (out / "table.md").read_text() == (tmp_path / "whole" / "table.md").read_text()


def test_a_run_killed_after_its_metrics_gets_its_diversity_measured(tmp_path, umls, monkeypatch):
    config = dans.TrainConfig(**FAST)
    whole = compare(
        config,
        ["self-adv"],
        ["distmult"],
        1,
        tmp_path / "whole",
        GridOptions(False, print, diversity=True),
    )
    out = tmp_path / "grid"
    with monkeypatch.context() as patch:
        patch.setattr(grids, "measure_diversity", lambda *args: (_ for _ in ()).throw(Killed))
        with pytest.raises(Killed):
            compare(
                config,
                ["self-adv"],
                ["distmult"],
                1,
                out,
                GridOptions(False, print, diversity=True),
            )
    assert (out / "runs" / "self-adv-distmult-seed1" / "metrics.json").exists()
    rows = compare(
        config, ["self-adv"], ["distmult"], 1, out, GridOptions(False, print, diversity=True)
    )
    assert "mean_pairwise_distance" in rows[0].diversity
    assert rows[0].diversity == whole[0].diversity


def test_diversity_is_measured_only_when_asked_and_then_for_runs_finished_without(tmp_path, umls):
    config, out = dans.TrainConfig(**FAST), tmp_path / "grid"
    plain = compare(config, ["self-adv"], ["distmult"], 1, out, GridOptions(False, print))
    run_dir = out / "runs" / "self-adv-distmult-seed1"
    assert not (run_dir / "diversity.json").exists()
    assert plain[0].diversity == {}
    asked = GridOptions(False, print, diversity=True)
    measured = compare(config, ["self-adv"], ["distmult"], 1, out, asked)
    assert (run_dir / "diversity.json").exists()
    assert measured[0].diversity["mean_pairwise_distance"] > 0
    assert measured[0].test == plain[0].test  # measured, not trained again


def test_compare_refuses_an_unfinished_run_of_other_settings(tmp_path, umls, monkeypatch):
    out = tmp_path / "grid"
    with monkeypatch.context() as patch:
        patch.setattr(grids, "measure_diversity", lambda *args: (_ for _ in ()).throw(Killed))
        with pytest.raises(Killed):
            compare(
                dans.TrainConfig(**FAST),
                ["uniform"],
                ["distmult"],
                1,
                out,
                GridOptions(False, print, diversity=True),
            )
    other = dans.TrainConfig(**{**FAST, "dim": 4})
    with pytest.raises(DansError, match="a run with other settings \\(dim\\)"):
        compare(other, ["uniform"], ["distmult"], 1, out, GridOptions(False, print))


def test_a_grid_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["compare", "--samplers", "uniform", "--decoders", "distmult", "--seeds", "1"]
    assert main([*argv, "--out", str(tmp_path / "file" / "grid"), "--quiet"]) == 2
    err = capsys.readouterr().err
    grid = tmp_path / "file" / "grid"
    assert err == f"dans compare: error: {grid}: cannot create the folder (Not a directory)\n"
