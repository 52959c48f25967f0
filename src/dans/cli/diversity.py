"""`dans diversity RUN`: how diverse a trained run's negatives are, for any sampler."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dans.cli.arguments import Command, add_device_flag, file_in_out, positive_int
from dans.cli.render import diversity_lines
from dans.experiments.diversity import DIVERSITY_POSITIVES, measure_diversity
from dans.files import write_output
from dans.pipeline import load_run
from dans.rundir import DIVERSITY_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by `dans train`")
    parser.add_argument(
        "--out", type=Path, required=True, help=f"folder to write {DIVERSITY_FILE} into"
    )
    parser.add_argument(
        "--max-positives",
        type=positive_int,
        default=DIVERSITY_POSITIVES,
        help=f"train positives measured, a seeded random subset (default {DIVERSITY_POSITIVES})",
    )
    parser.add_argument("--seed", type=int, help="seed of the draws (default: the run's)")
    add_device_flag(parser)


def run(args: argparse.Namespace) -> None:
    finished = load_run(args.run, device=args.device)
    seed = finished.config.runtime.seed if args.seed is None else args.seed
    found = measure_diversity(
        finished.model,
        finished.sampler,
        finished.kg,
        seed,
        args.max_positives,
        finished.config.training.batch_size,
    )
    found = {
        "run": str(args.run),
        "sampler": finished.config.training.sampler,
        "seed": seed,
        **found,
    }
    write_output(args.out_file, (json.dumps(found, indent=2) + "\n").encode())
    print(diversity_lines(found))
    print(f"written to {args.out_file}")


COMMAND = Command(
    "diversity",
    "measure how diverse a trained run's negatives are (any sampler)",
    add_arguments,
    run,
    check=file_in_out(DIVERSITY_FILE),
)
