"""PyKEEN's own training with its basic sampler against the same with dans's NSCaching and
KBGAN through the bridge (``dans.pykeen``): UMLS, DistMult, the same budget, several seeds.

Example:
    python benchmarks/pykeen_bridge.py --seeds 3 --out benchmarks/results/pykeen_bridge.json

Prints and writes each run's filtered test MRR (realistic ranks, validation triples filtered
too) and seconds per training epoch, and their mean and spread by sampler.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pykeen
import torch
from pykeen.pipeline import pipeline

import dans
from dans import pykeen as bridge
from dans.allocator import reuse_freed_memory

SAMPLERS = ("basic", "nscaching", "kbgan")


def run(sampler: str, seed: int, epochs: int) -> dict:
    kwargs = {"num_negs_per_pos": 20}
    if sampler != "basic":
        kwargs["seed"] = seed
    start = time.perf_counter()
    result = pipeline(
        dataset="UMLS",
        model="DistMult",
        model_kwargs={"embedding_dim": 100},
        loss="BCEWithLogits",
        optimizer="Adam",
        optimizer_kwargs={"lr": 0.01},
        negative_sampler=sampler,
        negative_sampler_kwargs=kwargs,
        training_kwargs={
            "num_epochs": epochs,
            "batch_size": 1000,
            "use_tqdm": False,
            "callbacks": bridge.SamplerCallback(),
        },
        evaluation_kwargs={"use_tqdm": False},
        random_seed=seed,
        device="cpu",
    )
    return {
        "sampler": sampler,
        "seed": seed,
        "test_mrr": result.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank"),
        "test_hits@10": result.metric_results.get_metric("both.realistic.hits_at_10"),
        "seconds_per_epoch": result.train_seconds / epochs,
        "wall_seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # As the dans command does (see dans.allocator), for both samplers' runs alike.
    kept = reuse_freed_memory()
    runs = []
    for sampler in SAMPLERS:
        for seed in range(1, args.seeds + 1):
            runs.append(run(sampler, seed, args.epochs))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for sampler in SAMPLERS:
        mine = [r for r in runs if r["sampler"] == sampler]
        mrr = [r["test_mrr"] for r in mine]
        summary[sampler] = {
            "test_mrr_mean": statistics.mean(mrr),
            "test_mrr_std": statistics.stdev(mrr) if len(mrr) > 1 else 0.0,
            "seconds_per_epoch_mean": statistics.mean(r["seconds_per_epoch"] for r in mine),
        }
        print(sampler, json.dumps(summary[sampler]))
    record = {
        "versions": {
            "pykeen": pykeen.get_version(),
            "torch": torch.__version__,
            "dans": dans.__version__,
        },
        "threads": torch.get_num_threads(),
        "reuses_freed_memory": kept,
        "epochs": args.epochs,
        "runs": runs,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
