"""`dans visualize RUN`: a t-SNE of a relation's positive tails and DANS's negatives (the
paper's Fig. 3)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dans.cli.arguments import Command, add_device_flag, dans_run, positive_int
from dans.experiments.visualize import (
    CHART_FILE,
    POINTS_FILE,
    negative_tails,
    project,
    write_visualization,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory of a `--sampler dans` run")
    parser.add_argument("--relation", required=True, help="relation name")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG and CSV")
    parser.add_argument(
        "--max-positives",
        type=positive_int,
        default=300,
        help="train triples of the relation drawn, a seeded random subset (default 300)",
    )
    parser.add_argument("--seed", type=int, help="seed of the draws (default: the run's)")
    add_device_flag(parser)


def run(args: argparse.Namespace) -> None:
    finished, sampler = dans_run(args.run, args.device, "visualize")
    kg = finished.kg
    relation = kg.relation_id(args.relation)
    seed = finished.config.runtime.seed if args.seed is None else args.seed
    points = negative_tails(finished, sampler, relation, args.max_positives, seed)
    coordinates = project(torch.stack([point.vector for point in points]), seed)
    title = (
        f"{kg.name}, relation {args.relation}: positive tails and the negative tails made "
        "for the same heads (t-SNE)"
    )
    write_visualization(points, coordinates, title, args.out)
    print(f"{len(points)} points: {args.out / CHART_FILE}, {args.out / POINTS_FILE}")


COMMAND = Command(
    "visualize",
    "t-SNE of a relation's positive tails and DANS's negatives (Fig. 3)",
    add_arguments,
    run,
)
