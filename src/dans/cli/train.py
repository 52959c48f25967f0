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
    add_tracker_flags,
    config_from_args,
    tracker_spec,
)
from dans.cli.render import metrics_table, training_summary
from dans.config import TrainConfig
from dans.options import flag_name
from dans.pipeline import resume, train
from dans.rundir import RunDirectory
from dans.tracking import NO_TRACKERS


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
    add_tracker_flags(parser)
    add_config_flags(parser)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Trackers write beside the run, so they need one; ``--resume`` takes every setting from
    the run's config.toml: another one would be silently ignored, or make the finished run
    differ from an uninterrupted one."""
    if args.tracker and args.out is None and args.resume is None:
        parser.error("--tracker needs --out: the trackers write into the run directory")
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
    folder = args.resume or args.out
    trackers = tracker_spec(args, folder, grouped=False) if folder else NO_TRACKERS
    with distributed.session():
        if args.resume is not None:
            RunDirectory(args.resume).check_can_resume()
            config = RunDirectory(args.resume).read_config()
        else:
            config = config_from_args(args)
        with trackers.open(folder.name if folder else "", config) as log:
            if args.resume is not None:
                finished = resume(
                    args.resume,
                    progress=not args.quiet,
                    checkpoint_every=args.checkpoint_every,
                    on_epoch=log.log_epoch,
                )
            else:
                finished = train(
                    config,
                    out=args.out,
                    overwrite=args.overwrite,
                    progress=not args.quiet,
                    checkpoint_every=args.checkpoint_every,
                    on_start=_say_nothing_is_saved if args.out is None else None,
                    on_epoch=log.log_epoch,
                )
            assert finished.metrics is not None  # train and resume return finished runs
            log.log_final(finished.metrics)
        reports = distributed.world().main  # under torchrun, rank 0 reports for the group
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
    check=check,
)
