"""benchmarks/scale.py: steps on a synthetic graph, timed with the dans command's allocator."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbour settings.py
spec = importlib.util.spec_from_file_location("scale", BENCHMARKS / "scale.py")
scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scale)


@pytest.mark.usefixtures("one_thread")
def test_steps_are_timed_after_the_allocator_is_set_and_the_record_says_so(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(scale, "reuse_freed_memory", lambda: calls.append("allocator") or True)
    build = scale.build_trainer
    monkeypatch.setattr(scale, "build_trainer", lambda *a: calls.append("build") or build(*a))
    out = tmp_path / "scale.json"
    graph = ["--entities", "300", "--relations", "4", "--triples", "2000", "--held-out", "20"]
    model = ["--set", "encoder=lookup", "--set", "dim=8", "--batch-size", "500", "--steps", "2"]
    monkeypatch.setattr(sys, "argv", ["scale.py", *graph, *model, "--out", str(out)])
    scale.main()
    record = json.loads(out.read_text())
    assert calls == ["allocator", "build"]
    assert record["reuses_freed_memory"] is True
    # 2,000 train triples in batches of 500: 4 steps an epoch, 2 of them timed.
    assert (record["steps_timed"], record["steps_in_epoch"]) == (2, 4)
    assert record["epoch_seconds_measured"] is False
