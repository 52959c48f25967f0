"""benchmarks/compare_pykeen.py: both libraries timed after the dans command's allocator is set,
and the record's ratio and difference worked from their two results."""

import pytest
from scripts import load_script

compare_pykeen = load_script("compare_pykeen")


@pytest.mark.usefixtures("one_thread")
def test_both_libraries_run_after_the_allocator_is_set(monkeypatch, call_log, record_of):

    def result(seconds: float, mrr: float) -> dict:
        test = {"mrr": mrr, **{f"hits@{k}": mrr for k in compare_pykeen.HITS_AT}}
        return {"seconds_per_epoch": seconds, "test": test}

    patches = {
        "pykeen_version": lambda: "1.0",
        "hide_expected_pykeen_warnings": lambda: None,
        "reuse_freed_memory": call_log.through("allocator"),
        "run_pykeen": call_log.through("pykeen", lambda config, kg: result(0.5, 0.70)),
        "run_dans": call_log.through("dans", lambda config, kg: result(0.05, 0.72)),
    }
    for name, value in patches.items():
        monkeypatch.setattr(compare_pykeen, name, value)
    record = record_of(compare_pykeen, "--threads", "1")
    assert call_log == ["allocator", "pykeen", "dans"]
    assert record["reuses_freed_memory"] is True
    assert record["seconds_per_epoch_ratio"] == pytest.approx(0.1)
    assert record["mrr_difference"] == pytest.approx(0.02)
