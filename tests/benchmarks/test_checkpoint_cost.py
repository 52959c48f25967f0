"""benchmarks/checkpoint_cost.py: the resume state's size and save time beside an epoch's."""

import pytest
from scripts import load_script

checkpoint_cost = load_script("checkpoint_cost")


@pytest.mark.usefixtures("one_thread")
def test_a_row_per_dataset_measured_after_the_allocator_is_set(monkeypatch, call_log, record_of):
    monkeypatch.setattr(checkpoint_cost, "reuse_freed_memory", call_log.through("allocator"))
    measure = call_log.through("measure", checkpoint_cost.measure)
    monkeypatch.setattr(checkpoint_cost, "measure", measure)
    argv = ["--datasets", "umls", "--sampler", "uniform", "--repeats", "1"]
    record = record_of(checkpoint_cost, *argv)
    assert call_log == ["allocator", "measure"]
    assert record["reuses_freed_memory"] is True
    [row] = record["rows"]
    assert (row["dataset"], row["sampler"], row["entities"]) == ("umls", "uniform", 135)
    assert row["state_mb"] > 0 and row["save_seconds_median"] > 0 and row["epoch_seconds"] > 0
