"""benchmarks/checkpoint_cost.py: the resume state's size and save time beside an epoch's."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "checkpoint_cost.py"
spec = importlib.util.spec_from_file_location("checkpoint_cost", SCRIPT)
checkpoint_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checkpoint_cost)


@pytest.mark.usefixtures("one_thread")
def test_a_row_per_dataset_measured_after_the_allocator_is_set(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(
        checkpoint_cost, "reuse_freed_memory", lambda: calls.append("allocator") or True
    )
    measure = checkpoint_cost.measure
    monkeypatch.setattr(
        checkpoint_cost, "measure", lambda *a: calls.append("measure") or measure(*a)
    )
    out = tmp_path / "cost.json"
    argv = ["checkpoint_cost.py", "--datasets", "umls", "--sampler", "uniform", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    checkpoint_cost.main()
    record = json.loads(out.read_text())
    assert calls == ["allocator", "measure"]
    assert record["reuses_freed_memory"] is True
    [row] = record["rows"]
    assert (row["dataset"], row["sampler"], row["entities"]) == ("umls", "uniform", 135)
    assert row["state_mb"] > 0 and row["save_seconds_median"] > 0 and row["epoch_seconds"] > 0
