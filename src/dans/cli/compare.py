"""`dans compare`: samplers x decoders x seeds, and the paper's comparison table."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command, add_grid_flags, config_from_args, grid_options, names
from dans.cli.render import grid_summary
from dans.experiments.compare import GRID_KEYS, compare

# The samplers and decoders of the paper's Tables 2 and 3, in its order; DANS as the paper has
# it, then with the GAN schedule of the authors' code.
COMPARED_SAMPLERS = (
    "uniform",
    "popularity",
    "self-adv",
    "mcns",
    "nscaching",
    "kbgan",
    "sans",
    "cake",
    "smile",
    "dans",
    "dans-authors",
)
COMPARED_DECODERS = ("distmult", "complex", "rotate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samplers",
        type=names,
        default=list(COMPARED_SAMPLERS),
        help="comma-separated samplers or sampler variants "
        f"(default: {','.join(COMPARED_SAMPLERS)})",
    )
    parser.add_argument(
        "--decoders",
        type=names,
        default=list(COMPARED_DECODERS),
        help=f"comma-separated (default: {','.join(COMPARED_DECODERS)})",
    )
    add_grid_flags(parser, leave_out=GRID_KEYS)


def run(args: argparse.Namespace) -> None:
    rows = compare(
        config_from_args(args),
        args.samplers,
        args.decoders,
        args.seeds,
        args.out,
        grid_options(args),
    )
    print(grid_summary(args.out, len(rows), table_format=args.format))


COMMAND = Command(
    "compare",
    "train samplers x decoders x seeds and write the paper's comparison table",
    add_arguments,
    run,
)
