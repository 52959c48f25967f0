"""The search: its space file, its trials against their run directories, pruning, and a study
that survives a killed process and is shared by two."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

import dans
from dans.errors import ConfigError, DansError
from dans.experiments import tuning
from dans.experiments.tuning import Dimension, TuneOptions, read_space, tune

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = dans.TrainConfig(encoder="lookup", dim=8, epochs=6, eval_every=2, device="cpu")
SPACE = """\
[lr]
low = 1e-3
high = 3e-2
log = true

[grad-clip]
choices = [0.0, 1.0]

[negatives]
low = 4
high = 16
step = 4
"""


def _space(tmp_path, text, base=BASE):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return read_space(path, base)


def test_a_space_file_declares_ranges_and_choices_by_key_or_flag(tmp_path):
    assert _space(tmp_path, SPACE) == [
        Dimension("lr", low=1e-3, high=3e-2, log=True),
        Dimension("grad_clip", choices=(0.0, 1.0)),
        Dimension("negatives", low=4, high=16, step=4),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[lr]\nlow = 1e-3\nhigh = 1e-2\nlo = 3\n", 4, "has no field 'lo'"),
        ("[lr]\nlow = 1e-2\nhigh = 1e-3\n", 3, "high must be greater than low"),
        ("[l2]\nlow = 0.0\nhigh = 1e-2\nlog = true\n", 2, "a log scale needs low > 0"),
        ("[lr]\nlow = 0.0\nhigh = 1e-2\n", 1, "--lr must be greater than 0"),
        ("[lr]\nhigh = 1e-2\n", 2, "needs low"),
        ("[lr]\nlow = 'a'\nhigh = 1e-2\n", 2, "expected float"),
        ("[negatives]\nlow = 4\nhigh = 8\nstep = 0\n", 4, "step must be positive"),
        ("[edge_dropout]\nchoices = []\n", 2, "non-empty list"),
        ("[edge_dropout]\nchoices = [0.2, 0.2]\n", 2, "a value twice"),
        ("[edge_dropout]\nchoices = [0.2, 1.5]\n", 1, "--edge-dropout must be less than 1.0"),
        ("[edge_dropout]\nchoices = [0.2]\nlow = 0.1\n", 3, "choices or a range, not both"),
        ("x = 1\n[lr]\nlow = 1e-3\nhigh = 1e-2\n", 1, "x must be a table"),
        ("[learning_rate]\nlow = 1\nhigh = 2\n", 1, "not a setting of `dans train`"),
        ("[seed]\nchoices = [1, 2]\n", 1, "--seed cannot be searched"),
        ("[dans_film_lambda]\nlow = 0.1\nhigh = 1.0\n", 1, "setting of the dans sampler"),
        ("[decoder]\nlow = 1\nhigh = 2\n", 2, "takes choices, not a range"),
        ("[l2]\nchoices = [0.1]\n[lr]\nchoices = [0.1]\n[--lr]\nchoices = [0.2]\n", 3, "twice"),
    ],
)
def test_a_bad_space_is_refused_naming_its_file_and_line(tmp_path, text, line, message):
    with pytest.raises(ConfigError, match=message) as caught:
        _space(tmp_path, text, BASE.replace(encoder="rgcn"))
    assert str(caught.value).startswith(f"{tmp_path / 'space.toml'}:{line}: "), caught.value


def test_a_samplers_own_setting_is_searched_with_that_sampler_or_beside_the_sampler(tmp_path):
    text = "[dans_film_lambda]\nlow = 0.1\nhigh = 1.0\n"
    assert _space(tmp_path, text, BASE.replace(sampler="dans"))[0].key == "dans_film_lambda"
    both = _space(tmp_path, text + "[sampler]\nchoices = ['uniform', 'dans']\n")
    assert [dimension.key for dimension in both] == ["dans_film_lambda", "sampler"]


def test_an_encoders_own_setting_is_searched_with_that_encoder_or_beside_the_encoder(tmp_path):
    text = "[edge_dropout]\nchoices = [0.0, 0.2]\n"
    with pytest.raises(
        ConfigError, match="setting of the rgcn encoder, but the runs use --encoder"
    ):
        _space(tmp_path, text)
    assert _space(tmp_path, text, BASE.replace(encoder="rgcn"))[0].key == "edge_dropout"
    both = _space(tmp_path, text + "[encoder]\nchoices = ['lookup', 'rgcn']\n")
    assert [dimension.key for dimension in both] == ["edge_dropout", "encoder"]


def _trials(out):
    with (out / tuning.TRIALS_FILE).open() as file:
        return list(csv.DictReader(file))


def test_a_search_writes_the_best_configuration_its_trials_and_charts(tmp_path):
    out = tmp_path / "search"
    space = _space(tmp_path, SPACE)
    lines = []
    result = tune(BASE, space, 4, out, TuneOptions(report=lines.append))
    rows = _trials(out)
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"]
    assert len(lines) == 4 and all(line.startswith(f"trial {i}:") for i, line in enumerate(lines))
    # Each trial's value is the best validation MRR its run directory recorded.
    for row in rows:
        if row["state"] == "complete":
            run_dir = out / "trials" / f"{int(row['number']):04d}"
            metrics = json.loads((run_dir / "metrics.json").read_text())
            assert float(row["valid_mrr"]) == metrics["valid"]["mrr"]
    complete = [row for row in rows if row["state"] == "complete"]
    best = max(complete, key=lambda row: float(row["valid_mrr"]))
    assert result.best_trial == int(best["number"])
    assert result.best_valid_mrr == float(best["valid_mrr"])
    # config.toml is the base with the best trial's values, as `dans train --config` reads it.
    written = dans.TrainConfig.from_toml(out / "config.toml")
    assert written == result.best_config
    for dimension in space:
        assert repr(written[dimension.key]) == best[dimension.key]
    assert written.replace(**{d.key: BASE[d.key] for d in space}) == BASE
    assert json.loads((out / tuning.BEST_FILE).read_text())["trial"] == result.best_trial
    for chart in (tuning.HISTORY_CHART, tuning.IMPORTANCE_CHART):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trials_count_in_total_so_a_rerun_trains_only_the_missing_ones(tmp_path):
    out = tmp_path / "search"
    space = _space(tmp_path, SPACE)
    tune(BASE, space, 2, out, TuneOptions(report=lambda _: None))
    before = _trials(out)
    lines = []
    tune(BASE, space, 3, out, TuneOptions(report=lines.append))
    assert [line.split(":")[0] for line in lines] == ["trial 2"]
    assert _trials(out)[:2] == before
    lines.clear()
    tune(BASE, space, 3, out, TuneOptions(report=lines.append))
    assert lines == []
    # The same search from scratch asks for the same parameters: the rerun changed nothing.
    again = tmp_path / "again"
    tune(BASE, space, 3, again, TuneOptions(report=lambda _: None))
    keys = ("number", "state", "valid_mrr", "lr", "grad_clip", "negatives")
    assert [{k: r[k] for k in keys} for r in _trials(again)] == [
        {k: r[k] for k in keys} for r in _trials(out)
    ]


def test_a_study_started_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "search"
    space = _space(tmp_path, SPACE)
    tune(BASE, space, 1, out, TuneOptions(report=lambda _: None))
    with pytest.raises(DansError, match=r"other settings \(dim\); use a new --out or --study"):
        tune(BASE.replace(dim=16), space, 2, out, TuneOptions(report=lambda _: None))
    with pytest.raises(DansError, match=r"other settings \(lr\)"):
        tune(BASE, space[1:], 2, out, TuneOptions(report=lambda _: None))


def test_a_trial_the_pruner_stops_ends_at_its_first_validation(tmp_path):
    # A pruner that stops every trial below an MRR of 1: pruned at the first report.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(1.0))
    objective = tuning._Objective(BASE, _space(tmp_path, SPACE), 1, tmp_path, TuneOptions())
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.last_step == BASE.evaluation.eval_every
    run_dir = tmp_path / "trials" / "0000"
    assert (run_dir / "config.toml").exists() and not (run_dir / "metrics.json").exists()


def test_a_trial_whose_training_diverges_counts_as_pruned_with_the_reason(tmp_path):
    study = optuna.create_study(direction="maximize")
    lines = []
    space = [Dimension("lr", choices=(1e30,))]  # with no clipping, every loss is soon NaN
    base = BASE.replace(grad_clip=0.0, epochs=8)
    objective = tuning._Objective(base, space, 1, tmp_path, TuneOptions(report=lines.append))
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["diverged"].startswith("training diverged: 20 steps in a row")
    assert lines == ["trial 0: lr 1e+30: diverged, counted as pruned"]


# ------------------------------------------------------------- processes: killed, and two at once

COMMAND = ["tune", "--encoder", "lookup", "--dim", "8", "--device", "cpu", "--lease", "2"]


def _tune(space, out, trials, epochs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "dans", *COMMAND, "--epochs", str(epochs)]
    command += ["--eval-every", "1", "--space", str(space), "--trials", str(trials)]
    return subprocess.Popen(
        [*command, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _study(out):
    return optuna.load_study(study_name="dans", storage=f"sqlite:///{out / 'study.db'}")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_study_killed_mid_trial_continues_where_it_stopped(tmp_path):
    space, out = tmp_path / "space.toml", tmp_path / "search"
    space.write_text("[lr]\nlow = 1e-3\nhigh = 3e-2\nlog = true\n")
    killed = _tune(space, out, 3, epochs=40)
    deadline = time.monotonic() + 300
    # Kill it while trial 1 trains, once it has logged an epoch.
    while time.monotonic() < deadline and killed.poll() is None:
        if (out / "trials" / "0001" / "log.csv").exists():
            break
        time.sleep(0.1)
    assert killed.poll() is None, "the search ended before it could be killed"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    resumed = _tune(space, out, 3, epochs=40)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    trials = _study(out).trials
    states = [trial.state.name for trial in trials]
    # Trial 0 was kept; trial 1 failed once its heartbeat lapsed, and its parameters were tried
    # again by a trial of their own; with one more trial, three finished.
    assert states.count("FAIL") == 1 and states[1] == "FAIL", states
    finished = [trial for trial in trials if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and len(trials) == 4
    (retry,) = [
        trial
        for trial in trials
        if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial) == 1
    ]
    assert retry.params == trials[1].params and retry.state.name in ("COMPLETE", "PRUNED")
    assert "trial 0:" not in stdout and f"trial {retry.number}:" in stdout


def test_two_processes_on_one_study_finish_its_trials_together_each_once(tmp_path):
    space, out = tmp_path / "space.toml", tmp_path / "search"
    space.write_text("[lr]\nlow = 1e-3\nhigh = 3e-2\nlog = true\n")
    workers = [_tune(space, out, 6, epochs=4) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    ran = [
        line.split(":")[0]
        for stdout, _ in outputs
        for line in stdout.splitlines()
        if line.startswith("trial ")
    ]
    assert len(ran) == len(set(ran)), outputs  # no trial trained by both
    trials = _study(out).trials
    finished = [trial.number for trial in trials if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    assert sorted(ran) == sorted(f"trial {number}" for number in finished)
    # A trial asked for after the other process took the last one ends at once, counted out.
    others = [trial for trial in trials if trial.number not in finished]
    assert all(trial.user_attrs.get("surplus") for trial in others)


def test_the_command_reports_the_best_trial_and_refuses_a_bad_space_in_one_line(tmp_path):
    space, out = tmp_path / "space.toml", tmp_path / "search"
    space.write_text("[lr]\nlow = 1e-3\nhigh = 3e-2\nlog = true\n")
    stdout, stderr = _tune(space, out, 2, epochs=2).communicate(timeout=600)
    best = json.loads((out / tuning.BEST_FILE).read_text())
    assert (
        f"2 trials finished; best: trial {best['trial']}, valid MRR {best['valid_mrr']:.4f}"
        in stdout
    )
    assert f"best configuration: {out / 'config.toml'} (dans train --config)" in stdout
    space.write_text("[lr]\nlow = 1e-3\n")
    bad = _tune(space, tmp_path / "other", 2, epochs=2)
    stdout, stderr = bad.communicate(timeout=600)
    assert bad.returncode == 2
    assert stderr == f"dans tune: error: {space}:2: [lr] needs high\n"
    assert not (tmp_path / "other").exists()
