"""`dans compare`: samplers x decoders x seeds, and the paper's comparison table."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command, add_grid_flags, config_from_args, grid_options, names
from dans.cli.render import grid_summary
from dans.experiments import paper
from dans.experiments.compare import GRID_KEYS, comparison_grid
from dans.experiments.grids import Grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samplers",
        type=names,
        default=list(paper.SAMPLERS),
        help=f"comma-separated samplers or sampler variants (default: {','.join(paper.SAMPLERS)})",
    )
    parser.add_argument(
        "--decoders",
        type=names,
        default=list(paper.DECODERS),
        help=f"comma-separated (default: {','.join(paper.DECODERS)})",
    )
    add_grid_flags(parser, leave_out=GRID_KEYS)


def grid(args: argparse.Namespace) -> Grid:
    return comparison_grid(config_from_args(args), args.samplers, args.decoders, args.seeds)


def run(args: argparse.Namespace) -> None:
    rows = grid(args).run(args.out, grid_options(args))
    print(grid_summary(args.out, len(rows), table_format=args.format))


COMMAND = Command(
    "compare",
    "train samplers x decoders x seeds and write the paper's comparison table",
    add_arguments,
    run,
    grid=grid,
)
