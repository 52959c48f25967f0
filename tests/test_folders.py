"""What dans writes and deletes: a folder is known by its marker, `--resume` and `--overwrite`
touch only a run's own files, and one process at a time writes a run folder."""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dans.cli import main
from dans.config import TrainConfig
from dans.errors import DansError
from dans.folders import MARKER_FILE, Kind, claim_folder, kind_of, mark, writing
from dans.rundir import RUN_FILES

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--encoder", "lookup", "--dim", "8", "--quiet", "--device", "cpu"]


def run_main(argv, capsys):
    """``dans ARGV``: its exit code and its one line of error (empty when it succeeded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err, err
    return code, err


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {
        path.relative_to(folder): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def a_project(folder):
    """A folder of the user's: a valid dans config.toml of their own, notes and data."""
    folder.mkdir()
    (folder / "config.toml").write_text(TrainConfig(dim=4).to_toml())
    (folder / "notes.md").write_text("my notes\n")
    (folder / "data").mkdir()
    (folder / "data" / "train.txt").write_text("a\tr\tb\n")
    return folder


def test_resume_in_a_folder_of_the_users_deletes_nothing(tmp_path, capsys):
    project = a_project(tmp_path / "project")
    before = snapshot(project)
    code, err = run_main(["train", "--resume", project], capsys)
    assert code == 2
    assert err == f"dans train: error: {project}: not a dans run (it has no {MARKER_FILE})\n"
    assert snapshot(project) == before


def test_overwrite_of_a_folder_of_the_users_deletes_nothing(tmp_path, capsys):
    project = a_project(tmp_path / "project")
    before = snapshot(project)
    code, err = run_main(["train", *FAST, "--epochs", "0", "--out", project, "--overwrite"], capsys)
    assert code == 2 and "holds files that are not a dans run" in err
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        (Kind.SEARCH, "holds a dans tune search, not a dans run; `dans tune` with `--out {}`"),
        (Kind.GRID, "holds a grid of dans runs (compare, ablate or sweep), not a dans run"),
    ],
)
def test_a_search_or_a_grid_is_no_run_to_resume_or_replace(tmp_path, capsys, kind, says):
    folder = tmp_path / "made"
    folder.mkdir()
    mark(folder, kind)
    # What `dans tune` leaves: the best configuration, the study and its trials.
    (folder / "config.toml").write_text(TrainConfig(dim=4).to_toml())
    (folder / "study.db").write_bytes(b"SQLite format 3\0")
    before = snapshot(folder)
    for argv in (
        ["train", "--resume", folder],
        ["train", *FAST, "--epochs", "0", "--out", folder, "--overwrite"],
    ):
        code, err = run_main(argv, capsys)
        assert code == 2 and says.format(folder) in err, err
    assert snapshot(folder) == before


def test_a_grid_refuses_a_run_folder_and_a_search_refuses_a_grid(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(["train", *FAST, "--epochs", "0", "--out", run], capsys)[0] == 0
    grid = ["compare", "--samplers", "uniform", "--decoders", "distmult", "--seeds", "1"]
    code, err = run_main([*grid, *FAST, "--epochs", "0", "--out", run], capsys)
    assert code == 2 and f"{run}: holds a dans run, not a grid of dans runs" in err
    (tmp_path / "grid").mkdir()
    mark(tmp_path / "grid", Kind.GRID)
    with pytest.raises(DansError, match="holds a grid of dans runs"):
        claim_folder(tmp_path / "grid", Kind.SEARCH)


def test_overwrite_removes_every_file_a_run_wrote_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "run"
    trackers = ["--tracker", "csv", "--tracker", "tensorboard", "--tracker", "mlflow"]
    assert run_main(["train", *FAST, "--epochs", "1", *trackers, "--out", out], capsys)[0] == 0
    (out / "mine.txt").write_text("mine")
    (out / "tensorboard" / "my-notes.txt").write_text("mine too")
    written = {path.name for path in out.iterdir()} - {"mine.txt", ".dans.json", ".dans.lock"}
    assert written <= set(RUN_FILES), "a run wrote a file that --overwrite does not know"
    assert run_main(["train", *FAST, "--epochs", "0", "--out", out, "--overwrite"], capsys)[0] == 0
    assert not (out / "tracking.csv").exists() and not (out / "mlflow.db").exists()
    assert [p.name for p in (out / "tensorboard").iterdir()] == ["my-notes.txt"]
    assert (out / "mine.txt").read_text() == "mine"


def test_a_refused_out_that_holds_a_killed_run_points_to_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(["train", *FAST, "--epochs", "0", "--out", out], capsys)[0] == 0
    (out / "metrics.json").unlink()
    code, err = run_main(["train", *FAST, "--epochs", "0", "--out", out], capsys)
    assert code == 2 and f"`dans train --resume {out}` finishes it" in err


HOLD = """
import sys, time
from pathlib import Path
from dans.folders import writing
with writing(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@contextlib.contextmanager
def held_elsewhere(folder):
    """Another process holding ``folder``'s writer lock, killed (SIGKILL) at the end."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_writer_is_refused_naming_the_holder_until_it_dies(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(["train", *FAST, "--epochs", "1", "--out", out], capsys)[0] == 0
    (out / "metrics.json").unlink()  # as if killed at its end: --resume would write it again
    before = snapshot(out)
    with held_elsewhere(out) as pid:
        holder = f"another dans process is writing it (pid {pid} on {socket.gethostname()})"
        for argv in (
            ["train", *FAST, "--epochs", "1", "--out", out, "--overwrite"],
            ["train", "--resume", out, "--quiet"],
        ):
            code, err = run_main(argv, capsys)
            assert code == 2 and f"{out}: {holder}" in err, err
        assert snapshot(out) == {**before, Path(".dans.lock"): snapshot(out)[Path(".dans.lock")]}
    # The holder was killed: the operating system released its lock.
    assert run_main(["train", "--resume", out, "--quiet"], capsys)[0] == 0
    assert (out / "metrics.json").is_file()


def test_a_grid_worker_does_not_write_a_run_another_process_holds(tmp_path, capsys):
    grid = tmp_path / "grid"
    run = grid / "runs" / "uniform-distmult-seed1"
    run.mkdir(parents=True)
    argv = ["compare", "--samplers", "uniform", "--decoders", "distmult", "--seeds", "1"]
    with held_elsewhere(run):
        code, err = run_main([*argv, *FAST, "--epochs", "0", "--out", grid], capsys)
    assert code == 2 and f"{run}: another dans process is writing it" in err
    assert not (run / "config.toml").exists()


def test_the_lock_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    with writing(tmp_path), writing(tmp_path):
        pass
    descriptor = os.open(tmp_path / ".dans.lock", os.O_RDWR)
    try:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(descriptor)


def test_a_damaged_marker_is_named(tmp_path):
    (tmp_path / MARKER_FILE).write_text("{not json")
    with pytest.raises(DansError, match=rf"^{tmp_path / MARKER_FILE}: not a dans folder marker"):
        kind_of(tmp_path)


def test_a_run_from_before_markers_is_still_resumed(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(["train", *FAST, "--epochs", "1", "--out", out], capsys)[0] == 0
    (out / MARKER_FILE).unlink()
    (out / "metrics.json").unlink()
    assert run_main(["train", "--resume", out, "--quiet"], capsys)[0] == 0
    assert kind_of(out) == Kind.RUN
