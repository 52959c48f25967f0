"""What saving the resume state costs: its size and the seconds of one save (seal, write, fsync,
rename), beside the seconds of one training epoch, for each dataset's model and sampler.

The state is that of a trainer after one epoch (Adam's moments exist, a best is recorded).

Example:
    python benchmarks/checkpoint_cost.py --datasets umls,fb15k-237 --sampler dans \
        --out benchmarks/results/checkpoint_cost.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import dans
from dans.allocator import reuse_freed_memory
from dans.builders import load_graph
from dans.pipeline import build_trainer
from dans.rundir import STATE_FILE, RunDirectory


def measure(config: dans.TrainConfig, repeats: int) -> dict[str, float | int | str]:
    kg = load_graph(config)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = RunDirectory(folder)
        trainer = build_trainer(config, kg, torch.device("cpu"))
        start = time.perf_counter()
        trainer.fit()
        epoch_seconds = time.perf_counter() - start - trainer.eval_seconds
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_dir.save_state(trainer.state_dict())
            seconds.append(time.perf_counter() - start)
        size = (run_dir.path / STATE_FILE).stat().st_size
    return {
        "dataset": kg.name,
        "sampler": config.training.sampler,
        "entities": kg.num_entities,
        "state_mb": round(size / 2**20, 2),
        "save_seconds_median": round(sorted(seconds)[len(seconds) // 2], 4),
        "epoch_seconds": round(epoch_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="umls", help="comma-separated")
    parser.add_argument("--sampler", default="dans")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # As the dans command does (see dans.allocator).
    kept = reuse_freed_memory()
    rows = []
    for dataset in args.datasets.split(","):
        config = dans.TrainConfig(
            dataset=dataset, sampler=args.sampler, epochs=1, eval_every=1, device="cpu"
        )
        row = measure(config, args.repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    outcome = {"torch_threads": torch.get_num_threads(), "reuses_freed_memory": kept, "rows": rows}
    args.out.write_text(json.dumps(outcome, indent=2) + "\n")


if __name__ == "__main__":
    main()
