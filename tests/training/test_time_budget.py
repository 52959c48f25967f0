"""Training to a time budget: the schedule laid out on the time spent, the last epoch the one
that leaves room for itself, resumed runs counting the time spent before, and the settings."""

import pytest
import torch

import dans
from dans.builders import build_model, build_sampler
from dans.cli.render import budget_use
from dans.errors import ConfigError
from dans.options import duration_seconds
from dans.training import Trainer, TrainingCallback
from dans.training import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("one_thread")

EPOCH_SECONDS = 10.0


class FakeClock:
    """The trainer's clock, moved on by hand: each epoch of training takes ``EPOCH_SECONDS``, and
    everything else no time at all."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: self.now)
        real = Trainer.train_epoch

        def train_epoch(trainer, sampler):
            totals = real(trainer, sampler)
            self.now += EPOCH_SECONDS
            return totals

        monkeypatch.setattr(Trainer, "train_epoch", train_epoch)


class Record(TrainingCallback):
    """Each epoch's learning rate and whether it was validated."""

    def __init__(self):
        self.rates, self.validated = [], []

    def on_epoch_end(self, trainer, log):
        self.rates.append(log.lr)
        if log.valid:
            self.validated.append(log.epoch)


def _trainer(umls, callbacks=(), checkpoint_every=1, **overrides):
    values = {
        "encoder": "lookup",
        "dim": 8,
        "epochs": 10,
        "eval_every": 5,
        "lr": 0.01,
        "lr_warmup_epochs": 2,
        "lr_decay": "linear",
        "batch_size": 2000,
        "negatives": 2,
        "device": "cpu",
        **overrides,
    }
    config = dans.TrainConfig(**values).validate()
    torch.manual_seed(config.runtime.seed)
    return Trainer(
        build_model(config, umls),
        umls,
        config,
        build_sampler("uniform", config, umls),
        build_sampler("uniform", config, umls),
        torch.device("cpu"),
        callbacks,
        checkpoint_every,
    )


def test_a_budget_lays_the_schedule_out_as_the_epochs_would(umls, monkeypatch):
    by_epochs = Record()
    _trainer(umls, [by_epochs]).fit()
    FakeClock(monkeypatch)
    by_time = Record()
    # Ten epochs of 10 s fill 100 s: each epoch starts where the epoch schedule puts it.
    result = _trainer(umls, [by_time], time_budget="100s").fit()
    assert result.epochs_run == 10 and result.elapsed_seconds == 100.0
    assert by_time.rates == pytest.approx(by_epochs.rates)
    assert by_time.validated == by_epochs.validated == [5, 10]


def test_a_budget_half_as_long_runs_the_whole_schedule_in_half_the_epochs(umls, monkeypatch):
    FakeClock(monkeypatch)
    seen = Record()
    result = _trainer(umls, [seen], time_budget="50s").fit()
    assert result.epochs_run == 5
    # Epoch k starts at 10 (k - 1) s, at 1 + (k - 1) * 2 on the 10-epoch schedule: warm-up
    # (1/3 of the rate), then the line down from the full rate, every other epoch's worth.
    positions = [1, 3, 5, 7, 9]
    expected = [1 / 3, 1.0, 1 - 2 / 8, 1 - 4 / 8, 1 - 6 / 8]
    assert seen.rates == pytest.approx([0.01 * share for share in expected]), positions
    # Five epochs done on the schedule after epoch 3 (6 of them), and the last.
    assert seen.validated == [3, 5]


def test_the_last_epoch_leaves_room_for_itself_and_its_validation(umls, monkeypatch):
    FakeClock(monkeypatch)
    # 35 s: a fourth epoch would end at 40 s.
    assert _trainer(umls, time_budget="35s").fit().epochs_run == 3
    assert _trainer(umls, time_budget="5s").fit().epochs_run == 1  # the first always runs


def test_a_resumed_run_counts_the_time_spent_before(umls, monkeypatch):
    clock = FakeClock(monkeypatch)

    class Kill(TrainingCallback):
        def on_checkpoint(self, trainer, state):
            if trainer.epoch == 4:
                self.state = state
                raise KeyboardInterrupt

    kill, whole = Kill(), Record()
    _trainer(umls, [whole], time_budget="100s").fit()
    with pytest.raises(KeyboardInterrupt):
        _trainer(umls, [kill], time_budget="100s").fit()
    clock.now += 3600.0  # the hour between the kill and the resumption counts for nothing
    rest = Record()
    resumed = _trainer(umls, [rest], time_budget="100s")
    resumed.load_state_dict(kill.state)
    assert resumed.elapsed_seconds == 40.0
    result = resumed.fit()
    assert result.epochs_run == 10 and result.elapsed_seconds == 100.0
    assert rest.rates == pytest.approx(whole.rates[4:])


class Saves(TrainingCallback):
    """The epochs after which the state was handed out to be saved."""

    def __init__(self):
        self.epochs = []

    def on_checkpoint(self, trainer, state):
        self.epochs.append(trainer.epoch)


@pytest.mark.parametrize("budget", [None, "100s"])
def test_a_duration_saves_by_the_clock_and_after_the_last_epoch(umls, monkeypatch, budget):
    FakeClock(monkeypatch)
    saves = Saves()
    # 10 s epochs: 30 s after the start is the first end 25 s or more after the last save.
    _trainer(umls, [saves], checkpoint_every="25s", time_budget=budget).fit()
    assert saves.epochs == [3, 6, 9, 10]


def test_a_resumed_run_saves_by_the_clock_from_where_it_resumed(umls, monkeypatch):
    clock = FakeClock(monkeypatch)

    class Kill(Saves):
        def on_checkpoint(self, trainer, state):
            self.state = state
            raise KeyboardInterrupt

    kill, saves = Kill(), Saves()
    with pytest.raises(KeyboardInterrupt):
        _trainer(umls, [kill], checkpoint_every="25s").fit()
    clock.now += 3600.0
    resumed = _trainer(umls, [saves], checkpoint_every="25s")
    resumed.load_state_dict(kill.state)
    resumed.fit()
    assert saves.epochs == [6, 9, 10]


def test_a_run_reports_how_it_spent_its_budget(tmp_path, monkeypatch):
    FakeClock(monkeypatch)
    config = dict(encoder="lookup", dim=8, epochs=4, negatives=2, device="cpu", eval_every=2)
    budgeted = dans.TrainConfig(**config, time_budget="20s")
    run = dans.train(budgeted, out=tmp_path / "budget", progress=False)
    metrics = run.metrics
    assert (metrics.time_budget_seconds, metrics.elapsed_seconds) == (20.0, 20.0)
    assert metrics.epochs == 2 and metrics.train_seconds == 20.0
    # On the fake clock validating and writing take no time.
    assert budget_use(metrics) == (
        "; of the 20 s budget, 20.0 s spent: 20.0 s training, 0.0 s validating, 0.0 s writing "
        "the run"
    )
    plain = dans.train(dans.TrainConfig(**config), out=tmp_path / "plain", progress=False).metrics
    assert plain.time_budget_seconds is None and budget_use(plain) == ""


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), (" .5m", 30.0)]
)
def test_durations_by_hand(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["90", "10 m", "0s", "-1m", "1d", "m", "1e3s", "inf"])
def test_what_is_not_a_duration_is_refused_naming_the_flag(text):
    with pytest.raises(ValueError):
        duration_seconds(text)
    with pytest.raises(ConfigError, match="--time-budget must be a duration such as 90s"):
        dans.TrainConfig(time_budget=text)


def test_a_budget_lays_out_one_phase():
    with pytest.raises(ConfigError, match="cannot follow --pretrain-epochs"):
        dans.TrainConfig(time_budget="1m", pretrain_epochs=1).validate()
