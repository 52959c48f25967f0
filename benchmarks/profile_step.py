"""Where one training step spends its time: ``torch.profiler`` over a few steps on 1,000
positives (or ``--batch``), the operators sorted by their own CPU time.

    python benchmarks/profile_step.py --dataset umls --sampler uniform
    python benchmarks/profile_step.py --dataset wn18rr --sampler dans --rows 30

Same configuration as benchmarks/speed.py: RGCN (2 layers, 4 bases, d 100, edge dropout 0.4) +
DistMult, 20 negatives, an untrained model, full-graph message passing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from dans.allocator import reuse_freed_memory
from speed import trainer_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="umls", help="a named dataset, see `dans datasets`")
    parser.add_argument("--sampler", default="uniform")
    parser.add_argument("--decoder", default="distmult")
    parser.add_argument("--steps", type=int, default=5, help="steps profiled")
    parser.add_argument("--rows", type=int, default=25, help="operators listed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="positives per step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # As the dans command does (see dans.allocator).
    reuse_freed_memory()
    trainer = trainer_for(
        torch.device("cpu"),
        dataset=args.dataset,
        sampler=args.sampler,
        decoder=args.decoder,
    )
    batch = trainer.train_triples[: args.batch]
    for _ in range(3):  # warm-up
        trainer.step(batch, trainer.sampler)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.step(batch, trainer.sampler)
        times.append(time.perf_counter() - start)
    print(f"{args.dataset}, {args.sampler}: median step {statistics.median(times):.4f} s")
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            trainer.step(batch, trainer.sampler)
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
