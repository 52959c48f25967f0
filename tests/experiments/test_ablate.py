"""`dans ablate`: the paper's four variants over seeds, their files, and resuming."""

import pytest

import dans
from dans.cli import main
from dans.errors import ConfigError
from dans.experiments.ablate import ablate
from dans.experiments.grids import GridOptions
from dans.experiments.paper import ABLATIONS
from dans.experiments.results import read_rows

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"encoder": "lookup", "dim": 8, "epochs": 1, "device": "cpu", "eval_every": 1}


def test_ablate_trains_each_variant_with_its_settings(tmp_path, umls, png_size):
    out = tmp_path / "ablation"
    config = dans.TrainConfig(**FAST, sampler="dans")
    rows = ablate(config, 1, out, GridOptions(False, lambda _: None))
    assert [(r.key, r.seed, r.status) for r in rows] == [
        ({"variant": "G_E"}, 1, "ok"),
        ({"variant": "G_R"}, 1, "ok"),
        ({"variant": "G_ER"}, 1, "ok"),
        ({"variant": "DANS"}, 1, "ok"),
    ]
    for variant, changes in ABLATIONS.items():
        stored = dans.TrainConfig.from_toml(out / "runs" / f"{variant}-seed1" / "config.toml")
        assert stored["sampler"] == "dans"
        assert (stored["dans_pathways"], stored["dans_film"]) == (
            changes["dans_pathways"],
            changes["dans_film"],
        )
    assert read_rows(out / "results.csv") == rows
    table = (out / "table.md").read_text()
    assert all(f"| {variant} | 1 |" in table for variant in ABLATIONS)
    assert png_size(out / "ablation.png")[0] >= 800
    said = []
    ablate(config, 1, out, GridOptions(False, said.append))
    assert len(said) == 5 and all(line.endswith("done before") for line in said[:4])


def test_cli_ablate(tmp_path, capsys, umls):
    out = tmp_path / "ablation"
    argv = ["ablate", "--seeds", "1", "--out", str(out), "--quiet", "--encoder", "lookup"]
    assert main([*argv, "--dim", "8", "--epochs", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "| G_ER | 1 |" in printed and f"chart: {out / 'ablation.png'}" in printed


def test_ablate_runs_on_the_authors_dans_and_refuses_another_sampler(tmp_path, umls):
    out = tmp_path / "ablation"
    config = dans.TrainConfig(**FAST, sampler="dans-authors")
    ablate(config, 1, out, GridOptions(False, lambda _: None))
    stored = dans.TrainConfig.from_toml(out / "runs" / "G_E-seed1" / "config.toml")
    assert stored.sampler_options("dans") == dans.TrainConfig(
        sampler="dans-authors", dans_pathways="entity", dans_film=False
    ).sampler_options("dans")
    with pytest.raises(ConfigError, match="--sampler uniform"):
        ablate(dans.TrainConfig(**FAST), 1, tmp_path / "other", GridOptions(False, print))


def test_cli_ablate_takes_either_dans(tmp_path, capsys, umls):
    out = tmp_path / "ablation"
    argv = ["ablate", "--seeds", "1", "--out", str(out), "--quiet", "--encoder", "lookup"]
    assert main([*argv, "--dim", "8", "--epochs", "1", "--sampler", "dans-authors"]) == 0
    stored = dans.TrainConfig.from_toml(out / "runs" / "DANS-seed1" / "config.toml")
    assert stored["dans_generator_steps"] == 1
    assert main(["ablate", "--out", str(tmp_path / "u"), "--sampler", "uniform"]) == 2
    assert "dans ablate varies DANS's generator" in capsys.readouterr().err
