"""Soak test of resuming: SIGKILL a `dans compare` grid again and again at random moments, run it
once more each time, and check that its final results equal those of a grid never stopped.

Each attempt starts the same `dans compare` command in its own process group; after a random
delay the whole group (with any `--jobs` workers) is killed. After ``--kills`` kills the grid is
left to finish. Results are equal when results.csv matches row for row, timing columns aside,
and table.md matches byte for byte.

Example:
    python benchmarks/soak_resume.py --kills 12 --out benchmarks/results/soak_resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dans.experiments.results import GridRow, read_rows

GRID = [
    "--samplers",
    "uniform,nscaching,kbgan,dans",
    "--decoders",
    "distmult",
    "--seeds",
    "2",
    "--dim",
    "32",
    "--epochs",
    "30",
    "--eval-every",
    "5",
    "--device",
    "cpu",
    "--quiet",
]


def compare(out: Path, jobs: int) -> subprocess.Popen:
    # One thread per job, as a grid run with --jobs gives each: the same on every attempt.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, "-m", "dans", "compare", *GRID, "--jobs", str(jobs), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def finish(process: subprocess.Popen) -> float:
    start = time.perf_counter()
    _, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"dans compare failed ({process.returncode}): {err.decode()}")
    return time.perf_counter() - start


def results(out: Path) -> list[GridRow]:
    """The grid's rows less what measures the machine (time, memory, device)."""
    return [row.without_machine() for row in read_rows(out / "results.csv")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs before the last attempt")
    parser.add_argument("--max-delay", type=float, default=8.0, help="longest seconds to a kill")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the outcome")
    args = parser.parse_args()
    draws = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        whole, killed = Path(scratch) / "whole", Path(scratch) / "killed"
        whole_seconds = finish(compare(whole, args.jobs))
        print(f"uninterrupted grid: {whole_seconds:.0f} s", flush=True)
        kills = []
        for attempt in range(1, args.kills + 1):
            process = compare(killed, args.jobs)
            delay = draws.uniform(0.5, args.max_delay)
            try:
                process.wait(timeout=delay)
                print(f"attempt {attempt}: the grid finished before its kill", flush=True)
                break
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            done = len(results(killed)) if (killed / "results.csv").exists() else 0
            kills.append({"attempt": attempt, "after_seconds": round(delay, 2), "runs_done": done})
            print(f"attempt {attempt}: killed after {delay:.1f} s, {done} runs done", flush=True)
        last_seconds = finish(compare(killed, args.jobs))
        same_rows = results(killed) == results(whole)
        same_table = (killed / "table.md").read_text() == (whole / "table.md").read_text()
    outcome = {
        "command": "dans compare " + " ".join(GRID) + f" --jobs {args.jobs}",
        "kills": kills,
        "uninterrupted_seconds": round(whole_seconds, 1),
        "last_attempt_seconds": round(last_seconds, 1),
        "results_equal": same_rows,
        "table_equal": same_table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    if not (same_rows and same_table):
        raise SystemExit("the resumed grid differs from the uninterrupted one")


if __name__ == "__main__":
    main()
