"""Atomic writes: a failed write names its file and leaves the old one whole; the metrics file
reads back as it was written."""

import errno
import os
import shutil
import subprocess

import pytest

import dans
from dans.cli import main
from dans.errors import DansError
from dans.files import write_atomic, write_output
from dans.rundir import RunDirectory


def no_space(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, failing):
    path = tmp_path / "metrics.json"
    write_atomic(path, b"old")
    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(DansError) as info:
        write_atomic(path, b"new")
    assert str(info.value) == (
        f"{path}: cannot write (No space left on device); the previous file is kept"
    )
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_files_are_written_with_the_umask_permissions_not_private_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.json", b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DansError, match=r"new\.json: cannot write \(No space left on device\)$"):
        write_atomic(tmp_path / "new.json", b"x")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DansError, match=rf"^{tmp_path / 'file'}: cannot create the folder"):
        write_output(tmp_path / "file" / "out.json", b"x")


def test_the_run_directory_cannot_be_created_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run"
    argv = ["train", "--epochs", "0", "--encoder", "lookup", "--dim", "4", "--quiet"]
    assert main([*argv, "--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dans train: error: {out}: cannot create the run directory")
    assert err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_directory_is_reported(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o555)
    try:
        argv = ["train", "--epochs", "0", "--encoder", "lookup", "--dim", "4", "--quiet"]
        assert main([*argv, "--device", "cpu", "--out", str(out)]) == 2
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert err.startswith(f"dans train: error: {out}") and "Permission denied" in err
    assert err.count("\n") == 1


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, where the system lets this process mount one (root on Linux)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_really_full_disk_stops_training_cleanly_keeping_every_file(tiny_disk, capsys):
    """The state (weights, Adam's moments, the best weights) outgrows the disk at once; the
    config, the log and the best model's checkpoint fit."""
    out = tiny_disk / "run"
    argv = ["train", "--encoder", "lookup", "--dim", "100", "--epochs", "3", "--eval-every", "1"]
    argv += ["--device", "cpu", "--quiet", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"dans train: error: {out}/") and "No space left on device" in err
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    run = RunDirectory(out)
    assert run.read_config().model.dim == 100
    assert run.load_checkpoint()["epoch"] == 1
    assert (out / "log.csv").read_text().count("\n") == 2  # header and epoch 1


def test_metrics_of_another_layout_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "metrics.json").write_text('{"mrr": 0.5}\n')
    with pytest.raises(DansError, match=r"metrics.json: not the metrics of a dans run"):
        RunDirectory(tmp_path).read_metrics()


def test_metrics_round_trip_through_their_file(tmp_path):
    run = dans.train(dans.TrainConfig(epochs=1, dim=8, device="cpu"), out=tmp_path / "run")
    assert RunDirectory(tmp_path / "run").read_metrics() == run.metrics
