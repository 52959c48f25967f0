"""`dans train`: train a model, or finish a killed run, and report its metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dans import distributed
from dans.cli.arguments import (
    Command,
    add_checkpoint_flag,
    add_config_flags,
    add_settings_flags,
    config_from_args,
)
from dans.cli.render import metrics_table, training_summary
from dans.config import TrainConfig
from dans.options import flag_name
from dans.pipeline import resume, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser)
    parser.add_argument("--out", type=Path, help="run directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish the killed run RUN from its last saved state, with its own config.toml "
        "(no other settings); a finished RUN is only reported",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_checkpoint_flag(parser)
    add_config_flags(parser)


def refuse_settings_beside_resume(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    """``--resume`` takes every setting from the run's config.toml: another one would be silently
    ignored, or make the finished run differ from an uninterrupted one."""
    if args.resume is None:
        return
    settings = list(TrainConfig.specs())
    settings += ["recipe", "config", "out"]
    given = [flag_name(name) for name in settings if getattr(args, name) is not None]
    given += ["--overwrite"] if args.overwrite else []
    if given:
        parser.error(
            f"--resume takes its settings from RUN/config.toml; leave out {', '.join(given)}"
        )


def _say_nothing_is_saved() -> None:
    print("dans train: no --out, so nothing will be saved", file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    try:
        if args.resume is not None:
            finished = resume(
                args.resume, progress=not args.quiet, checkpoint_every=args.checkpoint_every
            )
        else:
            finished = train(
                config_from_args(args),
                out=args.out,
                overwrite=args.overwrite,
                progress=not args.quiet,
                checkpoint_every=args.checkpoint_every,
                on_start=_say_nothing_is_saved if args.out is None else None,
            )
        reports = distributed.world().main  # under torchrun, rank 0 reports for the group
    finally:
        distributed.stop()
    if not reports:
        return
    config, metrics = finished.config, finished.metrics
    assert metrics is not None  # train and resume return finished runs
    print(training_summary(metrics))
    print(metrics_table(metrics.test, f"test ({config.evaluation.ties} ranks, filtered):"))
    if finished.path is not None:
        print(f"run written to {finished.path}")


COMMAND = Command(
    "train",
    "train a model and report its metrics",
    add_arguments,
    run,
    check=refuse_settings_beside_resume,
)
