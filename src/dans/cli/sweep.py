"""`dans sweep`: test metrics against a setting over seeds (the paper's Fig. 2(b), 2(c)), or
against every combination of several settings' values."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command, add_grid_flags, config_from_args, grid_options, names
from dans.cli.render import grid_summary
from dans.experiments.grids import Grid
from dans.experiments.sweep import CHART_FILE, settings_grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        required=True,
        help="the setting: a `dans train` flag or key such as negatives or dans-film-lambda "
        "(n_negatives and lambda are accepted too); given again with its own --values, the "
        "runs cover every combination",
    )
    parser.add_argument(
        "--values",
        type=names,
        action="append",
        required=True,
        help="comma-separated values of the --param before it (true or false for a switch)",
    )
    add_grid_flags(parser, leave_out=("seed",))


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if len(args.param) != len(args.values):
        parser.error("give each --param its own --values")


def grid(args: argparse.Namespace) -> Grid:
    # The paper's sweeps are of DANS: it is the sampler unless a flag or --config names another.
    return settings_grid(
        config_from_args(args, defaults={"sampler": "dans"}),
        dict(zip(args.param, args.values, strict=True)),
        args.seeds,
    )


def run(args: argparse.Namespace) -> None:
    rows = grid(args).run(args.out, grid_options(args))
    print(grid_summary(args.out, len(rows), CHART_FILE, args.format))


COMMAND = Command(
    "sweep",
    "test metrics against settings over seeds (Fig. 2(b), 2(c)), or a grid of several",
    add_arguments,
    run,
    check,
    grid,
)
