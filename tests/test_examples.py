"""Every script in examples/ runs as written, with few epochs, and prints what it promises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
RUNS = {
    "train_and_predict.py": (["--epochs", "2", "--out", "{tmp}/run"], "1. "),
    "own_graph.py": (["--epochs", "2", "--out", "{tmp}/own"], "test MRR"),
    "custom_sampler.py": (["--epochs", "2"], "rare: test MRR"),
    "pykeen_samplers.py": (["--epochs", "1"], "dans: MRR"),
    "tune_search.py": (["--trials", "2", "--epochs", "2", "--out", "{tmp}/search"], "best of 2"),
}


def test_every_example_is_run_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.mark.parametrize("script", sorted(RUNS))
def test_the_example_runs(script, tmp_path):
    args, printed = RUNS[script]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert printed in done.stdout
