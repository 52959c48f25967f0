"""Claims on a grid's runs: exclusive, renewed while held, taken over when their holder died;
two grid processes on one folder train every run exactly once; and the workers' records add up
to the grid's wall clock."""

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dans.experiments.claims import (
    LEASE_SECONDS,
    Claims,
    covered_seconds,
    wall_seconds,
    worker_spans,
)
from dans.experiments.results import read_rows


def holder_of(claim):
    return json.loads(claim.read_text())["holder"]


def test_a_claim_is_held_by_one_process_until_released(tmp_path):
    first, second = Claims(tmp_path), Claims(tmp_path)
    try:
        assert first.take("run-a")
        assert not second.take("run-a")
        assert second.take("run-b")
        first.release("run-a")
        assert second.take("run-a")
        assert holder_of(tmp_path / "claims" / "run-a.claim") == second.holder
    finally:
        first.close()
        second.close()
    assert list((tmp_path / "claims").iterdir()) == []  # closing released the rest


def test_a_lapsed_claim_is_taken_over_and_a_held_one_is_renewed(tmp_path):
    # A holder that died: its claim file stays, and nothing renews it.
    (tmp_path / "claims").mkdir()
    dead = tmp_path / "claims" / "run-a.claim"
    dead.write_text(json.dumps({"holder": "elsewhere:1:dead", "lease_seconds": 0.3}))
    long_ago = time.time() - 60
    os.utime(dead, (long_ago, long_ago))
    claims = Claims(tmp_path, lease_seconds=0.3)
    try:
        assert claims.take("run-a")
        assert holder_of(dead) == claims.holder
        # Held claims are renewed every lease / 3, so this one never lapses while held.
        os.utime(dead, (long_ago, long_ago))
        time.sleep(0.5)
        assert time.time() - dead.stat().st_mtime < 0.3
        other = Claims(tmp_path, lease_seconds=0.3)
        assert not other.take("run-a")
        other.close()
    finally:
        claims.close()


def _dead_claim(folder, name, lease_seconds, age_seconds):
    """The claim a holder that died left on run ``name``, last renewed ``age_seconds`` ago."""
    (folder / "claims").mkdir(exist_ok=True)
    path = folder / "claims" / f"{name}.claim"
    path.write_text(json.dumps({"holder": "elsewhere:1:dead", "lease_seconds": lease_seconds}))
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_a_claim_lapses_by_its_holders_lease_not_the_takers(tmp_path):
    _dead_claim(tmp_path, "long", lease_seconds=600, age_seconds=60)
    _dead_claim(tmp_path, "short", lease_seconds=1, age_seconds=60)
    impatient, patient = Claims(tmp_path, lease_seconds=0.3), Claims(tmp_path, lease_seconds=900)
    try:
        assert not impatient.take("long")  # its holder may still be alive: 60 s of 600
        assert patient.take("short")  # its holder is dead: 60 s of 1
        assert json.loads((tmp_path / "claims" / "short.claim").read_text()) == {
            "holder": patient.holder,
            "lease_seconds": 900,
        }
    finally:
        impatient.close()
        patient.close()


def _race(out, start, tried, results):
    claims = Claims(Path(out), lease_seconds=600)
    start.wait()
    results.put(claims.take("run-a"))
    tried.wait()  # a winner keeps its claim until every racer has tried
    claims.close()


def test_many_processes_racing_for_one_lapsed_claim_leave_one_winner(tmp_path):
    _dead_claim(tmp_path, "run-a", lease_seconds=1, age_seconds=60)
    context = multiprocessing.get_context("spawn")
    start, tried, results = context.Event(), context.Barrier(8), context.Queue()
    racers = [
        context.Process(target=_race, args=(str(tmp_path), start, tried, results)) for _ in range(8)
    ]
    for racer in racers:
        racer.start()
    time.sleep(2.0)  # every racer is waiting at the start
    start.set()
    won = [results.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
    assert won.count(True) == 1, won


def test_a_heartbeat_that_cannot_renew_stops_its_worker(tmp_path):
    lost = []
    claims = Claims(tmp_path, lease_seconds=0.3, on_lost=lost.append)
    try:
        assert claims.take("run-a")
        # Another process took the run over (this one was thought dead).
        (tmp_path / "claims" / "run-a.claim").write_text(
            json.dumps({"holder": "elsewhere:2:alive", "lease_seconds": 0.3})
        )
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost and "run-a.claim is no longer this process's" in lost[0]
    finally:
        claims.close()


LOSE = """
import sys, time
from pathlib import Path
from dans.experiments.claims import Claims
claims = Claims(Path(sys.argv[1]), lease_seconds=0.3)
claims.take("run-a")
(Path(sys.argv[1]) / "claims" / "run-a.claim").unlink()
time.sleep(30)
print("went on")
"""


def test_by_default_a_process_that_lost_its_claims_reports_it_and_ends(tmp_path):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LOSE, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("dans: error: this grid process cannot renew its claims in ")
    assert done.stderr.count("\n") == 1
    assert time.monotonic() - started < 20


def test_a_damaged_claim_is_reported_and_lapses_after_the_default_lease(tmp_path):
    dead = _dead_claim(tmp_path, "run-a", lease_seconds=1, age_seconds=LEASE_SECONDS + 60)
    dead.write_text('{"holder": "elsewhere:1:de')  # cut short
    os.utime(dead, (0, 0))
    claims = Claims(tmp_path)
    try:
        with pytest.warns(UserWarning, match="run-a.claim: a damaged claim"):
            assert claims.take("run-a")
        assert holder_of(dead) == claims.holder
    finally:
        claims.close()


def test_claims_and_worker_records_are_written_whole_and_a_damaged_one_is_left_out(tmp_path):
    claims = Claims(tmp_path)
    try:
        assert claims.take("run-a")
        names = [p.name for p in (tmp_path / "claims").iterdir()]
        assert names == ["run-a.claim"]  # no staged copy left behind
    finally:
        claims.close()
    (tmp_path / "workers" / "empty").write_text("")
    with pytest.warns(UserWarning, match="empty: a damaged worker record, left out"):
        assert wall_seconds(tmp_path) >= 0


def test_a_worker_is_recorded_from_its_start_and_renewed_while_it_lasts(tmp_path):
    before = time.time()
    claims = Claims(tmp_path, lease_seconds=0.3)
    try:
        (record,) = (tmp_path / "workers").iterdir()
        assert before <= float(record.read_text()) <= time.time()
        long_ago = time.time() - 60
        os.utime(record, (long_ago, long_ago))
        time.sleep(0.5)
        assert time.time() - record.stat().st_mtime < 0.3
    finally:
        claims.close()
    assert 0 <= wall_seconds(tmp_path) < time.time() - before


def test_the_wall_clock_adds_workers_and_counts_overlaps_once(tmp_path):
    (tmp_path / "workers").mkdir()
    (tmp_path / "sittings").mkdir()  # where grids of earlier releases kept their workers' records
    # Two overlapping workers (1000-1100 and 1050-1120) and a later one (1200-1260): 120 + 60 s.
    for name, start, end in (("a", 1000, 1100), ("b", 1050, 1120), ("c", 1200, 1260)):
        path = tmp_path / ("sittings" if name == "a" else "workers") / name
        path.write_text(f"{start}\n")
        os.utime(path, (end, end))
    assert wall_seconds(tmp_path) == 180
    assert worker_spans(tmp_path) == {"a": (1000, 1100), "b": (1050, 1120), "c": (1200, 1260)}
    assert wall_seconds(tmp_path / "no grid") == 0


def test_covered_seconds_counts_nested_and_touching_spans_once():
    # 0-100 holds 10-20; 100-150 touches it; 300-310 stands alone: 150 + 10 s.
    assert covered_seconds([(100, 150), (0, 100), (10, 20), (300, 310)]) == 160
    assert covered_seconds([]) == 0


GRID = ["--samplers", "uniform,self-adv", "--decoders", "distmult", "--seeds", "2"]
GRID += ["--encoder", "lookup", "--dim", "8", "--epochs", "2", "--device", "cpu", "--quiet"]
# A short lease: a process waiting on the other's runs looks again every second.
GRID += ["--lease", "3"]


def _grid(out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dans", "compare", *GRID, *extra, "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def test_two_grid_processes_on_one_folder_train_every_run_once(tmp_path):
    shared = tmp_path / "shared"
    processes = [_grid(shared), _grid(shared)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    trained = [
        line.split(": test MRR")[0]
        for output in outputs
        for line in output.splitlines()
        if ": test MRR" in line
    ]
    assert sorted(trained) == sorted(set(trained)) and len(trained) == 4, outputs

    alone = tmp_path / "alone"
    assert _grid(alone).wait(timeout=600) == 0

    def timeless(folder):
        return [row.without_machine() for row in read_rows(folder / "results.csv")]

    assert timeless(shared) == timeless(alone)
    assert (shared / "table.md").read_text() == (alone / "table.md").read_text()


KILLED = ["--samplers", "uniform", "--decoders", "distmult", "--seeds", "3", "--dim", "8"]
KILLED += ["--epochs", "30", "--eval-every", "5", "--device", "cpu", "--quiet", "--lease", "2"]


def test_a_killed_holders_run_is_taken_over_once_its_lease_lapses_and_ends_as_if_never_stopped(
    tmp_path,
):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def grid(out):
        command = [sys.executable, "-m", "dans", "compare", *KILLED, "--out", str(out)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)

    shared = tmp_path / "shared"
    first = grid(shared)
    log = shared / "runs" / "uniform-distmult-seed1" / "log.csv"
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) > 3):
        assert time.monotonic() < deadline and first.poll() is None, "the run must be caught"
        time.sleep(0.05)
    first.kill()  # SIGKILL: no cleanup, the claim file stays
    first.wait()
    claim = shared / "claims" / "uniform-distmult-seed1.claim"
    assert claim.exists()

    second = grid(shared)
    # The dead holder's lease is kept fresh until the second process has started seed 2, so
    # that a slow start-up (a loaded machine) cannot outlast it, then made to lapse at once.
    other = shared / "runs" / "uniform-distmult-seed2" / "log.csv"
    while not other.exists() and second.poll() is None:
        os.utime(claim)
        time.sleep(0.1)
    os.utime(claim, (0, 0))
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0
    # The second process trains seed 2 first, then takes seed 1 over, before seed 3.
    trained = [line.split(":")[0] for line in output.splitlines() if ": test MRR" in line]
    assert trained == [f"[{seed}/3] uniform + distmult, seed {seed}" for seed in (2, 1, 3)]

    alone = tmp_path / "alone"
    assert grid(alone).wait(timeout=600) == 0
    shared_rows, alone_rows = (read_rows(folder / "results.csv") for folder in (shared, alone))
    for row, expected in zip(shared_rows, alone_rows, strict=True):
        assert row.without_machine() == expected.without_machine()


def _children(pid):
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_grid_process_takes_its_worker_processes_with_it(tmp_path):
    # Two runs at once, long enough to be caught training in their worker processes.
    command = [sys.executable, "-m", "dans", "compare", *KILLED[:-2], "--epochs", "400"]
    command += ["--jobs", "2", "--out", str(tmp_path / "grid")]
    grid = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    logs = [
        tmp_path / "grid" / "runs" / f"uniform-distmult-seed{seed}" / "log.csv" for seed in (1, 2)
    ]
    deadline = time.monotonic() + 120
    while not all(log.exists() for log in logs):
        assert time.monotonic() < deadline and grid.poll() is None, "the runs must be caught"
        time.sleep(0.05)
    workers = [
        pid
        for pid in _children(grid.pid)
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    assert len(workers) == 2
    grid.kill()
    grid.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
