"""`dans ablate`: DANS against its pathways alone and without FiLM (the paper's Fig. 2(a))."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command, add_grid_flags, config_from_args, grid_options
from dans.cli.render import grid_summary
from dans.experiments.ablate import ABLATION_KEYS, CHART_FILE, ablation_grid
from dans.experiments.grids import Grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_grid_flags(parser, leave_out=ABLATION_KEYS)


def grid(args: argparse.Namespace) -> Grid:
    return ablation_grid(config_from_args(args, defaults={"sampler": "dans"}), args.seeds)


def run(args: argparse.Namespace) -> None:
    rows = grid(args).run(args.out, grid_options(args))
    print(grid_summary(args.out, len(rows), CHART_FILE, args.format))


COMMAND = Command(
    "ablate",
    "DANS (--sampler dans or dans-authors) against G_E only, G_R only and both without FiLM "
    "(Fig. 2(a))",
    add_arguments,
    run,
    grid=grid,
)
