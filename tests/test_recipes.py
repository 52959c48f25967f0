"""Recipes: every shipped one loads, validates and trains a step; flags and files override it."""

import json
import tomllib

import pytest

import dans
from dans.cli import main
from dans.config import TrainConfig
from dans.data.datasets import DATASETS, bundled_umls
from dans.errors import ConfigError
from dans.recipes import BASED_ON, describe, recipe_names, recipe_path, recipe_settings

pytestmark = pytest.mark.usefixtures("one_thread")

LARGE_GRAPHS = {"wn18rr", "nell-995", "fb15k-237"}


def test_a_recipe_ships_for_each_large_graph():
    assert set(recipe_names()) >= LARGE_GRAPHS
    for name in LARGE_GRAPHS:
        assert dans.recipe(name).data.dataset == name
    for name in recipe_names():
        assert describe(name), f"{name}: no description line"


def file_keys(name: str) -> dict:
    """What recipe ``name``'s own file says."""
    return tomllib.loads(recipe_path(name).read_text())


@pytest.mark.parametrize("name", ["wn18rr-3m", "nell-995-5m", "fb15k-237-10m"])
def test_a_budget_recipe_is_its_graphs_recipe_with_a_budget(name):
    own = file_keys(name)
    base = own.pop(BASED_ON)
    assert recipe_settings(name) == recipe_settings(base) | own
    assert dans.recipe(name).training.time_budget == own["time_budget"]
    assert dans.recipe(name).data.dataset == base


@pytest.mark.parametrize("sampler", ["uniform", "dans"])
@pytest.mark.parametrize("name", recipe_names())
def test_each_recipe_validates_and_trains_one_step_on_a_small_graph(tmp_path, name, sampler):
    settings = recipe_settings(name)
    own = file_keys(name)
    base = own.pop(BASED_ON, None)
    assert settings.keys() == (recipe_settings(base).keys() if base else set()) | own.keys()
    config = dans.recipe(name).validate()
    for key, value in settings.items():
        assert config[key] == value
    # The recipe as it is, on UMLS, for one epoch (not its time budget, if it has one): one
    # step, since no recipe's batch is smaller.
    small = dans.recipe(
        name,
        data_dir=str(bundled_umls()),
        epochs=1,
        time_budget="",
        device="cpu",
        sampler=sampler,
    )
    assert small.training.batch_size >= len(dans.load_dataset("umls").train)
    run = dans.train(small, out=tmp_path / "run", progress=False)
    assert run.metrics.epochs == 1
    assert run.metrics.skipped_steps["base"] == 0
    assert 0 < run.metrics.test.mrr <= 1
    used = TrainConfig.from_toml(tmp_path / "run" / "config.toml")
    assert used == small


def test_a_recipe_based_on_another_sets_its_keys_over_that_ones(tmp_path, monkeypatch):
    monkeypatch.setattr("dans.recipes._folder", lambda: tmp_path)
    (tmp_path / "base.toml").write_text('dataset = "wn18rr"\nlr = 0.03\ndim = 16\n')
    (tmp_path / "short.toml").write_text('based_on = "base"\nlr = 0.1\ntime_budget = "3m"\n')
    (tmp_path / "shorter.toml").write_text('based_on = "short"\ntime_budget = "1m"\n')
    assert recipe_settings("short") == {
        "dataset": "wn18rr",
        "lr": 0.1,
        "dim": 16,
        "time_budget": "3m",
    }
    assert recipe_settings("shorter")["time_budget"] == "1m"
    assert recipe_settings("shorter")["lr"] == 0.1
    (tmp_path / "typo.toml").write_text('based_on = "bsae"\n')
    with pytest.raises(ConfigError, match=r"typo\.toml:1: based_on: unknown recipe 'bsae'"):
        recipe_settings("typo")
    (tmp_path / "wrong.toml").write_text('based_on = "base"\nlr = "fast"\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml:2: lr must be float"):
        recipe_settings("wrong")


def test_overrides_are_checked_as_config_keys():
    assert dans.recipe("wn18rr", lr=0.5).training.lr == 0.5
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        dans.recipe("wn18rr", learning_rate=0.5)
    with pytest.raises(ConfigError, match="must be float"):
        dans.recipe("wn18rr", lr="fast")


def test_unknown_recipe_is_a_one_line_error(capsys):
    with pytest.raises(ConfigError, match=r"unknown recipe 'wn18'; known: .*wn18rr"):
        dans.recipe("wn18")
    assert main(["train", "--recipe", "wn18", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("dans train: error: --recipe: unknown recipe")


def test_flags_over_config_file_over_recipe(tmp_path, capsys):
    config = tmp_path / "mine.toml"
    config.write_text("lr = 0.5\ndim = 12\n")
    out = tmp_path / "run"
    argv = ["train", "--recipe", "wn18rr", "--config", config, "--dim", "16", "--epochs", "1"]
    argv += ["--data-dir", bundled_umls(), "--device", "cpu", "--quiet", "--out", out]
    assert main([str(arg) for arg in argv]) == 0
    used = TrainConfig.from_toml(out / "config.toml")
    recipe = dans.recipe("wn18rr")
    assert (used["lr"], used["dim"], used["epochs"]) == (0.5, 16, 1)
    untouched = set(recipe_settings("wn18rr")) - {"lr", "dim", "epochs"}
    assert untouched, "the recipe sets nothing the test leaves alone"
    assert all(used[key] == recipe[key] for key in untouched)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1


def test_datasets_lists_the_recipes(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    recipes = out.split("\n\n")[1].splitlines()
    assert recipes[0].split()[:2] == ["recipe", "dataset"]
    rows = {line.split()[0]: line.split() for line in recipes[1:]}
    assert set(rows) == set(recipe_names())
    assert all(rows[name][1] == dans.recipe(name).data.dataset for name in rows)
    assert set(DATASETS) >= {row[1] for row in rows.values()}
