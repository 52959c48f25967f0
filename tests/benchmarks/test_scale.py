"""benchmarks/scale.py: steps on a synthetic graph, timed with the dans command's allocator."""

import pytest
from scripts import load_script

scale = load_script("scale")


@pytest.mark.usefixtures("one_thread")
def test_steps_are_timed_after_the_allocator_is_set_and_the_record_says_so(
    monkeypatch, call_log, record_of
):
    monkeypatch.setattr(scale, "reuse_freed_memory", call_log.through("allocator"))
    monkeypatch.setattr(scale, "build_trainer", call_log.through("build", scale.build_trainer))
    graph = ["--entities", "300", "--relations", "4", "--triples", "2000", "--held-out", "20"]
    model = ["--set", "encoder=lookup", "--set", "dim=8", "--batch-size", "500", "--steps", "2"]
    record = record_of(scale, *graph, *model)
    assert call_log == ["allocator", "build"]
    assert record["reuses_freed_memory"] is True
    # 2,000 train triples in batches of 500: 4 steps an epoch, 2 of them timed.
    assert (record["steps_timed"], record["steps_in_epoch"]) == (2, 4)
    assert record["epoch_seconds_measured"] is False
