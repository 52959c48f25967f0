"""benchmarks/time_budget.py: a recipe trained to a budget, recorded with how it spent it."""

import json
import sys

import pytest
from scripts import load_script

import dans

time_budget = load_script("time_budget")


@pytest.mark.usefixtures("one_thread")
def test_a_budgeted_recipe_is_recorded_with_its_spending(tmp_path, monkeypatch, umls):
    # UMLS stands in for a large graph's recipe, small enough for a test.
    def small_recipe(name, **overrides):
        return dans.TrainConfig(encoder="lookup", dim=8, epochs=4, eval_every=2, **overrides)

    monkeypatch.setattr(time_budget.dans, "recipe", small_recipe)
    out = tmp_path / "umls.json"
    argv = ["time_budget.py", "--recipe", "umls", "--budget", "2s", "--target", "0.99"]
    monkeypatch.setattr(sys, "argv", [*argv, "--set", "negatives=3", "--out", str(out)])
    time_budget.main()
    record = json.loads(out.read_text())
    assert record["time_budget_seconds"] == 2.0 and record["reached"] is False
    assert record["settings"] == {
        "sampler": "uniform",
        "encoder": "lookup",
        "decoder": "distmult",
        "seed": 1,
        "negatives": 3,
    }
    parts = ("training_seconds", "validation_seconds", "writing_seconds")
    assert sum(record[part] for part in parts) == pytest.approx(record["spent_seconds"])
    assert 0 < record["test_mrr"] < 0.99 and record["epochs"] >= 1
    assert record["command"].endswith(f"--out {out}")


def small_recipe_with_budget(budget: str):
    """A stand-in for ``dans.recipe`` whose recipe carries time budget ``budget``."""

    def small_recipe(name, **overrides):
        settings = {"time_budget": budget, **overrides}
        return dans.TrainConfig(encoder="lookup", dim=8, epochs=4, **settings)

    return small_recipe


@pytest.mark.usefixtures("one_thread")
def test_without_budget_the_recipes_own_is_used(tmp_path, monkeypatch, umls):
    monkeypatch.setattr(time_budget.dans, "recipe", small_recipe_with_budget("1s"))
    out = tmp_path / "umls.json"
    monkeypatch.setattr(sys, "argv", ["time_budget.py", "--recipe", "umls", "--out", str(out)])
    time_budget.main()
    assert json.loads(out.read_text())["time_budget_seconds"] == 1.0


def test_a_recipe_without_a_budget_needs_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(time_budget.dans, "recipe", small_recipe_with_budget(""))
    out = tmp_path / "umls.json"
    monkeypatch.setattr(sys, "argv", ["time_budget.py", "--recipe", "umls", "--out", str(out)])
    with pytest.raises(SystemExit) as stopped:
        time_budget.main()
    assert stopped.value.code == 2 and not out.exists()
    assert "recipe umls has no time budget: give --budget" in capsys.readouterr().err
