"""`dans plot RUN [RUN ...]`: training curves of one or more runs, overlaid, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dans.cli.arguments import Command, file_in_out
from dans.experiments.plots import training_curves
from dans.rundir import RunDirectory
from dans.samplers import SAMPLERS

CURVES_FILE = "curves.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="+", type=Path, help="run directories written by `dans train`"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help=f"folder to write {CURVES_FILE} into"
    )


def run(args: argparse.Namespace) -> None:
    logs = {str(path): _log_with_diagnostics(RunDirectory(path)) for path in args.runs}
    names = ", ".join(path.name for path in args.runs)
    training_curves(logs, f"Training curves: {names}", args.out_file)
    print(f"chart: {args.out_file}")


def _log_with_diagnostics(run: RunDirectory) -> list[dict[str, Any]]:
    """The run's log.csv rows, each with what its sampler derives from it."""
    sampler = SAMPLERS.get(run.read_config().training.sampler)
    return [{**row, **sampler.diagnostics(row)} for row in run.read_log()]


COMMAND = Command(
    "plot",
    "loss, validation MRR and (DANS) the generated-vs-uniform score gap per epoch, as a PNG",
    add_arguments,
    run,
    check=file_in_out(CURVES_FILE),
)
