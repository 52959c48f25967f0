"""`dans sweep`: test metrics against one numeric setting over seeds (the paper's Fig. 2(b),
2(c))."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command, add_grid_flags, config_from_args, grid_options, names
from dans.cli.render import grid_summary
from dans.experiments.sweep import CHART_FILE, sweep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        required=True,
        help="the setting: a `dans train` flag or key such as negatives or dans-film-lambda "
        "(n_negatives and lambda are accepted too)",
    )
    parser.add_argument("--values", type=names, required=True, help="comma-separated values")
    add_grid_flags(parser, leave_out=("seed",))


def run(args: argparse.Namespace) -> None:
    # The paper's sweeps are of DANS: it is the sampler unless a flag or --config names another.
    rows = sweep(
        config_from_args(args, defaults={"sampler": "dans"}),
        args.param,
        args.values,
        args.seeds,
        args.out,
        grid_options(args),
    )
    print(grid_summary(args.out, len(rows), CHART_FILE, args.format))


COMMAND = Command(
    "sweep",
    "test metrics against one numeric setting over seeds (Fig. 2(b), 2(c))",
    add_arguments,
    run,
)
