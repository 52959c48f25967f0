"""Training callbacks: every hook at its point of a run, in order, for every callback given;
the older ``on_epoch`` still works; one function runs or resumes a run with its trackers."""

import pytest

import dans
from dans.errors import DansError
from dans.pipeline import run_training
from dans.tracking import TrackerSpec
from dans.training import TrainingCallback

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(TrainingCallback):
    """Records the hooks called, with the trainer's epoch at each."""

    def __init__(self, calls):
        self.calls = calls

    def on_train_start(self, trainer):
        self.calls.append(("train_start", trainer.epoch))

    def on_epoch_start(self, trainer):
        self.calls.append(("epoch_start", trainer.epoch))

    def on_validation(self, trainer, valid):
        self.calls.append(("validation", trainer.epoch))

    def on_best(self, trainer, best):
        self.calls.append(("best", best.epoch))

    def on_epoch_end(self, trainer, log):
        assert log.epoch == trainer.epoch and log.row()["epoch"] == log.epoch
        self.calls.append(("epoch_end", trainer.epoch))

    def on_checkpoint(self, trainer, state):
        assert state["epoch"] == trainer.epoch
        self.calls.append(("checkpoint", trainer.epoch))

    def on_train_end(self, trainer, result):
        self.calls.append(("train_end", result.epochs_run))


def _config(**overrides):
    values = dict(sampler="uniform", dim=8, epochs=3, eval_every=2, batch_size=2000, negatives=4)
    return dans.TrainConfig(**{**values, "device": "cpu", **overrides})


def test_every_hook_is_called_at_its_point_in_order_for_each_callback(tmp_path):
    first, second = [], []
    run = dans.train(
        _config(),
        out=tmp_path / "run",
        progress=False,
        checkpoint_every=2,
        callbacks=[Recorder(first), Recorder(second)],
    )
    # Validation after epochs 2 and 3 (the last); checkpoints after 2 and after the last.
    improved = [("best", 3)] if run.metrics.best_epoch == 3 else []
    assert first == [
        ("train_start", 0),
        ("epoch_start", 1),
        ("epoch_end", 1),
        ("epoch_start", 2),
        ("validation", 2),
        ("best", 2),
        ("epoch_end", 2),
        ("checkpoint", 2),
        ("epoch_start", 3),
        ("validation", 3),
        *improved,
        ("epoch_end", 3),
        ("checkpoint", 3),
        ("train_end", 3),
    ]
    assert second == first


def test_on_epoch_still_works_for_one_release_with_a_warning():
    rows = []
    with pytest.warns(DeprecationWarning, match="callbacks="):
        dans.train(_config(epochs=2), progress=False, on_epoch=rows.append)
    assert [row["epoch"] for row in rows] == [1, 2]


def test_run_training_trains_and_resumes_with_its_trackers(tmp_path):
    trackers = TrackerSpec(("csv",), tmp_path / "run", "test")
    calls = []
    first = run_training(
        _config(), tmp_path / "run", progress=False, callbacks=[Recorder(calls)], trackers=trackers
    )
    assert first.metrics.epochs == 3 and calls[-1] == ("train_end", 3)
    # A finished run resumed is reported as it is, its metrics set.
    again = run_training(None, tmp_path / "run", resume_run=True, trackers=trackers)
    assert again.metrics.to_dict() == first.metrics.to_dict()
    tracked = (tmp_path / "run" / "tracking.csv").read_text()
    assert "test_mrr" in tracked and "valid_mrr" in tracked
    with pytest.raises(DansError, match="needs its folder"):
        run_training(None, resume_run=True)
