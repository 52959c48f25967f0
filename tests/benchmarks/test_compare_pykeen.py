"""benchmarks/compare_pykeen.py: both libraries timed after the dans command's allocator is set,
and the record's ratio and difference worked from their two results."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "compare_pykeen.py"
spec = importlib.util.spec_from_file_location("compare_pykeen", SCRIPT)
compare_pykeen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_pykeen)


def result(seconds: float, mrr: float) -> dict:
    test = {"mrr": mrr, **{f"hits@{k}": mrr for k in compare_pykeen.HITS_AT}}
    return {"seconds_per_epoch": seconds, "test": test}


@pytest.mark.usefixtures("one_thread")
def test_both_libraries_run_after_the_allocator_is_set(monkeypatch, tmp_path):
    calls = []
    patches = {
        "pykeen_version": lambda: "1.0",
        "hide_expected_pykeen_warnings": lambda: None,
        "reuse_freed_memory": lambda: calls.append("allocator") or True,
        "run_pykeen": lambda config, kg: calls.append("pykeen") or result(0.5, 0.70),
        "run_dans": lambda config, kg: calls.append("dans") or result(0.05, 0.72),
    }
    for name, value in patches.items():
        monkeypatch.setattr(compare_pykeen, name, value)
    out = tmp_path / "compare.json"
    monkeypatch.setattr(sys, "argv", ["compare_pykeen.py", "--threads", "1", "--out", str(out)])
    compare_pykeen.main()
    record = json.loads(out.read_text())
    assert calls == ["allocator", "pykeen", "dans"]
    assert record["reuses_freed_memory"] is True
    assert record["seconds_per_epoch_ratio"] == pytest.approx(0.1)
    assert record["mrr_difference"] == pytest.approx(0.02)
