"""Resuming: a run killed at any point finishes with the numbers of a run never stopped."""

import csv
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import dans
import dans.data.datasets
from dans import files
from dans.cli import main
from dans.rundir import RunDirectory
from dans.samplers import SAMPLERS
from dans.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TIMINGS = (
    "seconds",
    "valid_seconds",
    "triples_per_second",
    "train_seconds",
    "eval_seconds",
    "seconds_per_epoch",
    "elapsed_seconds",
    "peak_memory_mb",  # of the process that finished the run
)


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing may catch it, so no cleanup runs."""


def small(sampler="uniform", **overrides):
    values = dict(
        sampler=sampler,
        dim=8,
        epochs=4,
        eval_every=1,
        patience=0,
        batch_size=2000,
        negatives=4,
        device="cpu",
    )
    return dans.TrainConfig(**{**values, **overrides})


def kill_during_epoch(monkeypatch, epoch):
    """Make training die as soon as ``epoch`` starts, after every file of the epoch before."""
    real = Trainer.train_epoch

    def train_epoch(self, sampler):
        if self.epoch == epoch:
            raise Killed
        return real(self, sampler)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    return value


def numbers(value, prefix=""):
    """Every number in nested metrics, by its path."""
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            found.update(numbers(item, f"{prefix}{key}."))
        return found
    return {prefix: value}


def assert_same_run(resumed, uninterrupted):
    """The two run directories hold the same numbers (CPU: equal to 1e-6), timings aside."""
    got = without_timings(json.loads((resumed / "metrics.json").read_text()))
    want = without_timings(json.loads((uninterrupted / "metrics.json").read_text()))
    assert numbers(got).keys() == numbers(want).keys()
    for key, value in numbers(want).items():
        assert numbers(got)[key] == pytest.approx(value, abs=1e-6, nan_ok=True), key
    got_rows, want_rows = log_rows(resumed), log_rows(uninterrupted)
    assert len(got_rows) == len(want_rows)
    for got_row, want_row in zip(got_rows, want_rows, strict=True):
        assert got_row == pytest.approx(want_row, abs=1e-6, nan_ok=True)
    got_best, want_best = (
        RunDirectory(path).load_checkpoint() for path in (resumed, uninterrupted)
    )
    assert got_best["epoch"] == want_best["epoch"]
    for part in ("model", "sampler"):
        assert got_best[part].keys() == want_best[part].keys()
        for key, value in want_best[part].items():
            assert torch.allclose(got_best[part][key].double(), value.double(), atol=1e-6), key
    assert not (resumed / "resume.pt").exists(), "a finished run keeps no resume state"


def log_rows(path):
    with open(path / "log.csv") as file:
        return [
            {
                key: float(value) if value else None
                for key, value in row.items()
                if key not in (*TIMINGS, "phase")
            }
            for row in csv.DictReader(file)
        ]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each sampler's run of :func:`small`, trained once without stopping."""
    runs = {}

    def run(sampler, **overrides):
        key = (sampler, tuple(sorted(overrides.items())))
        if key not in runs:
            runs[key] = tmp_path_factory.mktemp("whole") / "run"
            dans.train(small(sampler, **overrides), out=runs[key], progress=False)
        return runs[key]

    return run


def killed_in(monkeypatch, out, config, epoch):
    """Train ``config`` into ``out`` and kill the run as ``epoch`` starts."""
    with monkeypatch.context() as patch:
        kill_during_epoch(patch, epoch)
        with pytest.raises(Killed):
            dans.train(config, out=out, progress=False)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS.names()))
def test_every_sampler_resumes_to_the_uninterrupted_numbers(
    tmp_path, monkeypatch, uninterrupted, sampler
):
    out = tmp_path / "run"
    killed_in(monkeypatch, out, small(sampler), 3)
    assert RunDirectory(out).load_state()["epoch"] == 2
    assert len(log_rows(out)) == 2
    run = dans.resume(out, progress=False)
    assert run.metrics.epochs == 4
    assert_same_run(out, uninterrupted(sampler))


@pytest.mark.parametrize(
    ("sampler", "settings", "epoch"),
    [
        ("dans", dict(pretrain_epochs=2, pretrain_restore_best=False), 2),
        ("dans", dict(pretrain_epochs=2, pretrain_restore_best=True), 2),
        ("dans", dict(lr_warmup_epochs=1, lr_decay="cosine", dans_gan_positives=500), 3),
        ("nscaching", dict(encoder="lookup", sparse_embeddings=True, l2_scope="batch"), 3),
    ],
    ids=[
        "killed-in-pretraining",
        "pretraining-best-restored",
        "schedule-and-gan-sample",
        "row-sparse",
    ],
)
def test_a_run_killed_part_way_resumes_to_the_uninterrupted_numbers(
    tmp_path, monkeypatch, uninterrupted, sampler, settings, epoch
):
    out = tmp_path / "run"
    killed_in(monkeypatch, out, small(sampler, **settings), epoch)
    dans.resume(out, progress=False)
    assert_same_run(out, uninterrupted(sampler, **settings))


def test_states_saved_every_n_epochs_resume_from_the_last_one(tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    saved = []
    real = RunDirectory.save_state
    with monkeypatch.context() as patch:
        patch.setattr(
            RunDirectory,
            "save_state",
            lambda self, state: (saved.append(state["epoch"]), real(self, state)),
        )
        kill_during_epoch(patch, 4)
        with pytest.raises(Killed):
            dans.train(small("nscaching"), out=out, progress=False, checkpoint_every=2)
    assert saved == [2]
    # Epoch 3 was logged by the killed run, but the state is of epoch 2: epoch 3 is done again.
    assert len(log_rows(out)) == 3
    dans.resume(out, progress=False, checkpoint_every=2)
    assert_same_run(out, uninterrupted("nscaching"))


def test_the_last_epoch_is_always_saved_so_a_kill_in_testing_trains_no_more(
    tmp_path, monkeypatch, uninterrupted
):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(
            dans.pipeline, "evaluate", lambda *args, **kwargs: (_ for _ in ()).throw(Killed)
        )
        with pytest.raises(Killed):
            dans.train(small("kbgan"), out=out, progress=False, checkpoint_every=3)
    assert RunDirectory(out).load_state()["epoch"] == 4
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", lambda *args: pytest.fail("trained again"))
        dans.resume(out, progress=False)
    assert_same_run(out, uninterrupted("kbgan"))


@pytest.mark.parametrize("cadence", [-1, "soon", "0s"])
def test_a_bad_checkpoint_cadence_is_refused_before_anything_is_written(tmp_path, cadence):
    out = tmp_path / "run"
    with pytest.raises(dans.DansError, match="--checkpoint-every"):
        dans.train(small("uniform"), out=out, progress=False, checkpoint_every=cadence)
    assert not out.exists()


def test_an_early_stopped_run_resumes_stopped(tmp_path, monkeypatch):
    config = small("self-adv", epochs=30, patience=1)
    whole = dans.train(config, out=tmp_path / "whole", progress=False)
    assert whole.metrics.epochs < 30, "the run must stop early for this test to mean anything"
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(
            dans.pipeline, "evaluate", lambda *args, **kwargs: (_ for _ in ()).throw(Killed)
        )
        with pytest.raises(Killed):
            dans.train(config, out=out, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", lambda *args: pytest.fail("trained again"))
        dans.resume(out, progress=False)
    assert_same_run(out, tmp_path / "whole")


def test_a_crash_while_saving_the_state_keeps_the_one_before(tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    calls = []
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith("resume.pt"):
            calls.append(target)
            if len(calls) == 3:
                raise Killed  # the temporary file is written, the rename never happens
        return real_replace(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", replace)
        with pytest.raises(Killed):
            dans.train(small("dans"), out=out, progress=False)
    assert RunDirectory(out).load_state()["epoch"] == 2
    dans.resume(out, progress=False)
    assert_same_run(out, uninterrupted("dans"))


def test_a_run_killed_before_its_first_state_starts_again(tmp_path, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_during_epoch(patch, 1)
        with pytest.raises(Killed):
            dans.train(small("mcns"), out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        ".dans.json",
        ".dans.lock",
        "config.toml",
        "entities.tsv",
        "provenance.json",
        "relations.tsv",
    ]
    dans.resume(out, progress=False)
    assert_same_run(out, uninterrupted("mcns"))


def test_resuming_a_finished_run_reports_it_without_training(tmp_path, monkeypatch, uninterrupted):
    finished = uninterrupted("uniform")
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("trained again"))
    run = dans.resume(finished, progress=False)
    assert run.metrics.to_dict() == json.loads((finished / "metrics.json").read_text())
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before


def test_a_state_that_does_not_fit_its_config_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_during_epoch(patch, 2)
        with pytest.raises(Killed):
            dans.train(small("dans"), out=out, progress=False)
    config = (out / "config.toml").read_text()
    (out / "config.toml").write_text(config.replace("dim = 8", "dim = 12"))
    with pytest.raises(dans.DansError, match=r"resume\.pt: does not fit its config\.toml"):
        dans.resume(out, progress=False)
    (out / "config.toml").write_text(config.replace('sampler = "dans"', 'sampler = "kbgan"'))
    with pytest.raises(dans.DansError, match=r"resume\.pt: does not fit its config\.toml"):
        dans.resume(out, progress=False)


def test_a_disk_that_fills_up_stops_the_run_cleanly_and_it_resumes(
    tmp_path, monkeypatch, capsys, uninterrupted
):
    out = tmp_path / "run"
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 17:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    argv = ["train", "--sampler", "dans", "--dim", "8", "--epochs", "4", "--eval-every", "1"]
    argv += ["--patience", "0", "--batch-size", "2000", "--negatives", "4", "--device", "cpu"]
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "fsync", fsync)
        assert main([*argv, "--quiet", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dans train: error: {out}/") and err.count("\n") == 1, err
    assert "cannot write (No space left on device)" in err
    # Nothing is half-written: no temporary file is left, and every file still reads.
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    epoch = RunDirectory(out).load_state()["epoch"]
    assert 1 <= epoch < 4
    RunDirectory(out).load_checkpoint()
    assert len(log_rows(out)) >= epoch
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert_same_run(out, uninterrupted("dans"))


def test_cli_resume_takes_no_other_settings(tmp_path, capsys):
    for extra in (["--dim", "4"], ["--out", str(tmp_path)], ["--overwrite"]):
        with pytest.raises(SystemExit) as info:
            main(["train", "--resume", str(tmp_path), *extra])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and extra[0] in err, err


def test_cli_resume_of_something_that_is_no_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert (
        capsys.readouterr().err
        == f"dans train: error: {tmp_path / 'nothing'}: no such run directory\n"
    )


def test_a_tampered_state_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_during_epoch(patch, 2)
        with pytest.raises(Killed):
            dans.train(small(), out=out, progress=False)
    data = bytearray((out / "resume.pt").read_bytes())
    data[-100] ^= 1
    (out / "resume.pt").write_bytes(bytes(data))
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    assert "resume.pt: damaged or changed since it was written" in capsys.readouterr().err


# ---------------------------------------------------------------- a real SIGKILL, twice


def _dans_train(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "dans", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _kill_after_state(process, out, epoch):
    """SIGKILL ``process`` once ``out``'s saved state has reached ``epoch``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if RunDirectory(out).load_state()["epoch"] >= epoch:
                break
        except (dans.DansError, TypeError):
            pass  # not written yet
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_twice_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    args = ["--sampler", "dans", "--dim", "16", "--epochs", "12", "--eval-every", "2"]
    args += ["--batch-size", "2000", "--device", "cpu", "--quiet"]
    whole = _dans_train(*args, "--out", tmp_path / "whole")
    out = tmp_path / "run"
    killed = _dans_train(*args, "--out", out)
    _kill_after_state(killed, out, 3)
    again = _dans_train("--resume", out)
    _kill_after_state(again, out, 7)
    finish = _dans_train("--resume", out)
    for process in (whole, finish):
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
    assert "test (realistic ranks, filtered)" in stdout.decode()
    assert_same_run(out, tmp_path / "whole")


# --------------------------------------------------------------------------------------------
# Runs travel: they record their data and environment, load from any folder, and refuse data
# that changed since.
# --------------------------------------------------------------------------------------------
UMLS_FILES = dans.data.datasets.resolve("umls")


@pytest.fixture
def relative_run(tmp_path, monkeypatch):
    """A run trained from ``tmp_path`` on a copy of UMLS named by the relative path ``graph``."""
    (tmp_path / "graph").mkdir()
    for split in ("train", "valid", "test"):
        (tmp_path / "graph" / f"{split}.txt").write_bytes(
            (UMLS_FILES / f"{split}.txt").read_bytes()
        )
    monkeypatch.chdir(tmp_path)
    dans.train(small(data_dir="graph", epochs=1), out="run", progress=False)
    return tmp_path


def test_a_run_records_its_data_its_id_maps_and_its_environment(relative_run):
    record = json.loads((relative_run / "run" / "provenance.json").read_text())
    graph = relative_run / "graph"
    assert record["data"]["source"] == str(graph.resolve())
    for split in ("train", "valid", "test"):
        expected = hashlib.sha256((graph / f"{split}.txt").read_bytes()).hexdigest()
        assert record["data"]["sha256"][split] == expected
    assert record["environment"]["torch"] == torch.__version__
    assert record["environment"]["dans"] == dans.__version__
    assert record["environment"]["threads"] == 1
    assert record["environment"]["device"] == "cpu"
    kg = dans.load_dataset(data_dir=graph)
    lines = (relative_run / "run" / "entities.tsv").read_text().splitlines()
    assert lines == [f"{i}\t{name}" for i, name in enumerate(kg.entity_names)]


def test_a_run_with_a_relative_data_path_loads_from_another_folder(relative_run, monkeypatch):
    elsewhere = relative_run / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = dans.load_run(relative_run / "run")
    assert run.kg.num_entities == 135
    # On another machine the recorded folder is gone: the configuration's path is used.
    record_path = relative_run / "run" / "provenance.json"
    record = json.loads(record_path.read_text())
    monkeypatch.chdir(relative_run)
    for gone in (str(relative_run / "gone"), ""):
        record["data"]["source"] = gone
        record_path.write_text(json.dumps(record))
        assert dans.load_run("run").kg.source == str((relative_run / "graph").resolve())


def test_data_that_changed_since_training_is_refused_in_one_line(relative_run, capsys):
    test_file = relative_run / "graph" / "test.txt"
    test_file.write_text("".join(test_file.read_text().splitlines(keepends=True)[:-1]))
    assert main(["evaluate", "run"]) == 2
    assert capsys.readouterr().err == (
        f"dans evaluate: error: {test_file.resolve()}: differs from the file run was trained on "
        "(its SHA-256 changed)\n"
    )


def test_a_damaged_record_is_one_line(relative_run, capsys):
    (relative_run / "run" / "provenance.json").write_text('{"data": {"source": "x"}}')
    assert main(["evaluate", "run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dans evaluate: error: run/provenance.json: not the record of a dans run")
    assert len(err.splitlines()) == 1
