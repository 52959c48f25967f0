"""`dans train`: train a model, or finish a killed run, and report its metrics."""

from __future__ import annotations

import argparse
import datetime
import itertools
import sys
from collections.abc import Callable
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
from dans.config import TrainConfig, resolve_device
from dans.options import flag_name
from dans.pipeline import run_training
from dans.tracking import NO_TRACKERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="run directory to write (default: a new folder under runs/ named for the time, the "
        "dataset and the sampler)",
    )
    parser.add_argument("--no-save", action="store_true", help="train and keep nothing")
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
    """``--no-save`` keeps nothing, so it takes no folder and no tracker (they write into the
    run's folder); ``--resume`` takes every setting from the run's config.toml: another one
    would be silently ignored, or make the finished run differ from an uninterrupted one."""
    if args.no_save and (args.out is not None or args.resume is not None or args.tracker):
        parser.error("--no-save keeps nothing: leave out --out, --resume and --tracker")
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


def default_out(config: TrainConfig, now: datetime.datetime | None = None) -> Path:
    """A new run folder under ``runs/``: ``runs/<date>-<time>-<dataset>-<sampler>``, with a
    number after it when one of that name exists."""
    stamp = f"{now or datetime.datetime.now():%Y%m%d-%H%M%S}"
    dataset = Path(config.data.data_dir).name if config.data.data_dir else config.data.dataset
    base = Path("runs") / f"{stamp}-{dataset}-{config.training.sampler}".replace(":", "-")
    taken = itertools.count(2)
    path = base
    while path.exists():
        path = base.with_name(f"{base.name}-{next(taken)}")
    return path


def _announce(config: TrainConfig, out: Path | None, chosen: bool) -> Callable[[], None]:
    """What ``dans train`` says as training begins: where the run goes unless the user ``chose``
    it, and the device that ``--device auto`` chose."""

    def say() -> None:
        if out is None:
            print("dans train: --no-save, so nothing is kept", file=sys.stderr)
        elif not chosen:
            print(f"dans train: writing the run to {out}", file=sys.stderr)
        if config.runtime.device == "auto":
            print(f"dans train: training on {resolve_device('auto')}", file=sys.stderr)

    return say


def run(args: argparse.Namespace) -> None:
    with distributed.session():
        config, on_start = None, None
        if args.resume is None:
            config = config_from_args(args)
            chosen = args.out is not None
            if not chosen and not args.no_save:
                args.out = default_out(config)
            if not distributed.launch_rank():  # under torchrun, rank 0 speaks for the group
                on_start = _announce(config, args.out, chosen)
        folder = args.resume or args.out
        finished = run_training(
            config,
            folder,
            resume_run=args.resume is not None,
            overwrite=args.overwrite,
            progress=not args.quiet,
            checkpoint_every=args.checkpoint_every,
            trackers=tracker_spec(args, folder, grouped=False) if folder else NO_TRACKERS,
            on_start=on_start,
        )
        reports = distributed.world().main  # under torchrun, rank 0 reports for the group
    if not reports:
        return
    config, metrics = finished.config, finished.metrics
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
