"""A large graph's recipe trained to a time budget: the test MRR the best validated model reaches,
how the budget was spent, and whether a target was met, as JSON.

    python benchmarks/time_budget.py --recipe wn18rr-3m --target 0.372 --checkpoint-every 1m \
        --out benchmarks/results/time_budget/wn18rr-3m-recipe.json

Uniform negatives with RGCN + DistMult at seed 1 unless ``--set KEY=VALUE`` says otherwise; the
recipe's other settings as shipped (its epochs lay out the schedule over the budget), its own
time budget unless ``--budget`` gives one (a recipe without one needs it); the state
saved every epoch unless ``--checkpoint-every`` says otherwise (``1m``: by the clock). Time it on
an idle machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

import dans
from dans.allocator import reuse_freed_memory
from dans.files import write_atomic
from dans.pipeline import CHECKPOINT_EVERY
from dans.version import __version__
from settings import setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipe", required=True, help="a shipped recipe (dans datasets lists them)"
    )
    parser.add_argument("--budget", help="90s, 10m, 1.5h (default: the recipe's)")
    parser.add_argument("--target", type=float, help="the test MRR to reach")
    parser.add_argument("--set", type=setting, action="append", default=[], help="KEY=VALUE")
    parser.add_argument(
        "--checkpoint-every",
        default=str(CHECKPOINT_EVERY),
        help="how often the run saves its state: epochs, or a duration such as 1m",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    # As the dans command does (see dans.allocator).
    kept = reuse_freed_memory()
    settings = {"sampler": "uniform", "seed": 1, "device": "cpu", **dict(args.set)}
    if args.budget is not None:
        settings["time_budget"] = args.budget
    config = dans.recipe(args.recipe, **settings)
    if not config.training.time_budget:
        parser.error(f"recipe {args.recipe} has no time budget: give --budget")
    with tempfile.TemporaryDirectory() as folder:
        run = dans.train(
            config, out=Path(folder) / "run", progress=False, checkpoint_every=args.checkpoint_every
        )
    metrics = run.metrics
    validating = metrics.eval_seconds - metrics.test.seconds
    record = {
        "recipe": args.recipe,
        "settings": {key: config[key] for key in ("sampler", "encoder", "decoder", "seed")}
        | dict(args.set),
        "checkpoint_every": args.checkpoint_every,
        "reuses_freed_memory": kept,
        "time_budget_seconds": metrics.time_budget_seconds,
        "spent_seconds": metrics.elapsed_seconds,
        "training_seconds": metrics.train_seconds,
        "validation_seconds": validating,
        "writing_seconds": metrics.elapsed_seconds - metrics.train_seconds - validating,
        "epochs": metrics.epochs,
        "best_epoch": metrics.best_epoch,
        "valid_mrr": metrics.valid.mrr,
        "test_mrr": metrics.test.mrr,
        "test_hits@10": metrics.test.both.hits_at_10,
        "target_test_mrr": args.target,
        "reached": None if args.target is None else metrics.test.mrr >= args.target,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "dans": __version__,
        "command": " ".join(["benchmarks/time_budget.py", *sys.argv[1:]]),
    }
    text = json.dumps(record, indent=1) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, text.encode())


if __name__ == "__main__":
    main()
