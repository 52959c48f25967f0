"""Peak memory: a known allocation shows in the peak, and a reset forgets the one before."""

import numpy as np
import pytest
import torch

import dans
from dans import memory
from dans.cli.render import training_summary
from dans.rundir import RunMetrics

CPU = torch.device("cpu")
MIB = 2**20


def touch(mib: int) -> None:
    """Allocate and write ``mib`` MiB, then free it."""
    block = np.ones(mib * MIB // 8)
    del block


def test_an_allocation_shows_in_the_peak_and_a_reset_forgets_it():
    memory.reset_peak(CPU)
    before = memory.peak_mb(CPU)
    touch(400)
    after = memory.peak_mb(CPU)
    assert after - before >= 390
    memory.reset_peak(CPU)
    if not memory._CLEAR_REFS.exists():
        pytest.skip("this platform cannot reset the peak resident set")
    assert memory.peak_mb(CPU) < after - 300


def test_a_run_reports_its_peak_and_the_summary_shows_it(tmp_path):
    run = dans.train(dans.TrainConfig(epochs=1, dim=8, device="cpu"), out=tmp_path / "run")
    current = memory.peak_mb(CPU)
    assert run.metrics.peak_memory_mb is not None
    assert 0 < run.metrics.peak_memory_mb <= current
    assert f"peak {run.metrics.peak_memory_mb:.0f} MiB" in training_summary(run.metrics)


def test_metrics_from_before_peak_memory_was_recorded_read_back_without_it(tmp_path):
    run = dans.train(dans.TrainConfig(epochs=1, dim=8, device="cpu"))
    values = run.metrics.to_dict()
    del values["peak_memory_mb"]
    read = RunMetrics.from_dict(values)
    assert read.peak_memory_mb is None and read.test == run.metrics.test
