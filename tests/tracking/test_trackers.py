"""Each tracker, read back with its own tool's reader: the settings, every epoch's metrics as
log.csv has them, and the final test metrics as metrics.json has them."""

import csv
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dans
from dans.cli import build_parser
from dans.cli.arguments import tracker_spec
from dans.errors import ConfigError
from dans.pipeline import run_training
from dans.tracking import NO_TRACKERS, TrackerSpec
from dans.tracking.mlflow import STORE_FILE, mlflow_name
from dans.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = dans.TrainConfig(
    encoder="lookup", sampler="dans", dim=8, epochs=4, eval_every=2, device="cpu"
)
KINDS = ("csv", "tensorboard", "mlflow")


def _train(out, spec, config=CONFIG):
    return run_training(config, out, progress=False, trackers=spec)


def _log_rows(out):
    with (out / "log.csv").open() as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A short DANS run logged to every tracker, as ``dans train --out RUN --tracker ...``."""
    out = tmp_path_factory.mktemp("tracked") / "run"
    run = _train(out, TrackerSpec(KINDS, out, "dans"))
    return out, run


def _expected(out, run):
    """What every tracker must hold: each log.csv number by epoch (with the score gap), and the
    final metrics."""
    epochs = {}
    for row in _log_rows(out):
        numbers = {k: float(v) for k, v in row.items() if v and k not in ("epoch", "phase")}
        numbers["score_gap"] = numbers["score_generated"] - numbers["score_uniform"]
        epochs[int(row["epoch"])] = numbers
    final = {f"test_{k}": v for k, v in run.metrics.test.both.to_dict().items()}
    final["best_valid_mrr"] = run.metrics.valid.mrr
    return epochs, final


def test_csv_holds_the_settings_every_epoch_and_the_test_metrics(tracked):
    out, run = tracked
    with (out / "tracking.csv").open() as file:
        rows = list(csv.DictReader(file))
    params = {row["key"]: row["value"] for row in rows if row["kind"] == "param"}
    assert params["sampler"] == "dans" and float(params["lr"]) == CONFIG.training.lr
    assert set(params) == set(CONFIG.to_dict())
    logged = {}
    for row in rows:
        if row["kind"] == "metric":
            logged.setdefault(int(row["step"]), {})[row["key"]] = float(row["value"])
    epochs, final = _expected(out, run)
    for epoch, numbers in epochs.items():
        for key, value in numbers.items():
            assert logged[epoch][key] == pytest.approx(value, abs=1e-12), (epoch, key)
    assert "valid_mrr" in logged[2] and "valid_mrr" not in logged[1]
    for key, value in final.items():
        assert logged[run.metrics.epochs][key] == value
    assert rows[-1] == {"kind": "status", "step": "", "key": "finished", "value": "true"}


def test_tensorboard_holds_each_metric_as_a_scalar_by_epoch(tracked):
    out, run = tracked
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    epochs, final = _expected(out, run)
    for key in ("loss", "valid_mrr", "score_gap", "discriminator_real_accuracy", "seconds"):
        scalars = {event.step: event.value for event in events.Scalars(key)}
        expected = {epoch: numbers[key] for epoch, numbers in epochs.items() if key in numbers}
        assert scalars == pytest.approx(expected, rel=1e-6), key  # stored as 32-bit floats
    assert events.Scalars("test_mrr")[0].value == pytest.approx(final["test_mrr"], rel=1e-6)


def test_mlflow_holds_the_settings_every_epoch_and_the_test_metrics(tracked):
    out, run = tracked
    client = MlflowClient(f"sqlite:///{out / STORE_FILE}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "dans"]
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "run" and found.info.status == "FINISHED"
    assert found.data.params["decoder"] == CONFIG.model.decoder
    assert float(found.data.params["dans_film_lambda"]) == CONFIG["dans_film_lambda"]
    epochs, final = _expected(out, run)
    for key in ("loss", "valid_hits@10", "score_gap"):
        history = client.get_metric_history(found.info.run_id, mlflow_name(key))
        expected = {epoch: numbers[key] for epoch, numbers in epochs.items() if key in numbers}
        assert {metric.step: metric.value for metric in history} == expected, key
    for key, value in final.items():
        assert found.data.metrics[mlflow_name(key)] == value


def test_a_resumed_run_goes_on_in_its_unfinished_mlflow_run(tmp_path):
    spec = TrackerSpec(("mlflow",), tmp_path, "grid", grouped=True)
    with pytest.raises(KeyboardInterrupt), spec.open("run-a", CONFIG) as log:
        log.log_epoch({"epoch": 1, "phase": "train", "loss": 0.5})
        raise KeyboardInterrupt
    with spec.open("run-a", CONFIG) as log:
        log.log_epoch({"epoch": 2, "phase": "train", "loss": 0.25})
    client = MlflowClient(f"sqlite:///{tmp_path / STORE_FILE}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "grid"]
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [(metric.step, metric.value) for metric in history] == [(1, 0.5), (2, 0.25)]


def test_nothing_is_written_before_the_run_directory_is_made(tmp_path):
    # The trackers of `dans train --out RUN` write into RUN, which training creates.
    out = tmp_path / "run"
    spec = TrackerSpec(KINDS, out, "dans")
    with spec.open("run", CONFIG):
        assert not out.exists()
    _train(out, spec, CONFIG.replace(sampler="uniform", epochs=1))
    assert {"tracking.csv", "tensorboard", STORE_FILE, "metrics.json"} <= {
        path.name for path in out.iterdir()
    }


def test_an_unknown_tracker_is_refused_before_anything_trains(tmp_path):
    with pytest.raises(ConfigError, match="unknown tracker 'wandb'"):
        TrackerSpec(("wandb",), tmp_path, "dans")


def _dans(*args):
    return subprocess.run(
        [sys.executable, "-m", "dans", *map(str, args)], capture_output=True, text=True
    )


def test_the_commands_take_trackers(tmp_path):
    done = _dans(
        "compare", "--samplers", "uniform", "--decoders", "distmult", "--seeds", "2",
        "--encoder", "lookup", "--dim", "8", "--epochs", "2", "--device", "cpu", "--quiet",
        "--tracker", "csv", "--tracker", "tensorboard", "--out", tmp_path / "grid",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = sorted(path.name for path in (tmp_path / "grid" / "runs").iterdir())
    assert sorted(p.stem for p in (tmp_path / "grid" / "tracking").iterdir()) == runs
    assert sorted(p.name for p in (tmp_path / "grid" / "tensorboard").iterdir()) == runs
    # Without --out, the trackers write into the run's new folder under runs/.
    done = _dans("train", "--tracker", "csv", "--epochs", "1", "--encoder", "lookup", "--quiet")
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "tracking.csv").is_file() and (run / "metrics.json").is_file()
    refused = _dans("train", "--tracker", "csv", "--epochs", "1", "--no-save")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        "--no-save keeps nothing: leave out --out, --resume and --tracker"
    )


def test_under_torchrun_rank_0_alone_logs(monkeypatch, tmp_path):
    args = build_parser()[0].parse_args(
        ["train", "--out", str(tmp_path), "--tracker", "csv", "--tracker", "csv"]
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert tracker_spec(args, tmp_path, grouped=False) == NO_TRACKERS
    monkeypatch.setenv("RANK", "0")
    assert tracker_spec(args, tmp_path, grouped=False) == TrackerSpec(("csv",), tmp_path, "dans")


class _Killed(BaseException):
    """Stands for SIGKILL in-process: nothing may catch it."""


def test_a_resumed_runs_csv_holds_each_epoch_once(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = CONFIG.replace(sampler="uniform", epochs=5, eval_every=1)
    spec = TrackerSpec(("csv",), out, "dans")
    real = Trainer.train_epoch

    def killed_at_epoch_4(self, sampler):
        if self.epoch == 4:
            raise _Killed
        return real(self, sampler)

    # States are saved every 2 epochs: epoch 3 is logged, then trained and logged again.
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", killed_at_epoch_4)
        with pytest.raises(_Killed):
            run_training(config, out, progress=False, checkpoint_every=2, trackers=spec)
    run_training(None, out, resume_run=True, progress=False, checkpoint_every=2, trackers=spec)
    with (out / "tracking.csv").open() as file:
        rows = list(csv.DictReader(file))
    keys = [(row["kind"], row["step"], row["key"]) for row in rows]
    assert len(keys) == len(set(keys))
    losses = {int(row["step"]): float(row["value"]) for row in rows if row["key"] == "loss"}
    assert losses == {int(row["epoch"]): float(row["loss"]) for row in _log_rows(out)}
    assert sorted(losses) == [1, 2, 3, 4, 5]
    assert [row["value"] for row in rows if row["kind"] == "status"] == ["true"]
