"""`dans tune`: a hyper-parameter search with Optuna over any training setting."""

from __future__ import annotations

import argparse
from pathlib import Path

from dans.cli.arguments import (
    Command,
    add_config_flags,
    add_lease_flag,
    add_settings_flags,
    add_tracker_flags,
    config_from_args,
    positive_int,
    tracker_spec,
)
from dans.experiments.tuning import (
    BEST_FILE,
    HISTORY_CHART,
    IMPORTANCE_CHART,
    TRIALS_FILE,
    TuneOptions,
    read_space,
    tune,
)
from dans.rundir import CONFIG_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--space",
        type=Path,
        required=True,
        help="TOML file with a table per setting searched: low, high and optionally log = true "
        "or step, or choices = [...]",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        required=True,
        help="trials in the study in all, finished or pruned: a rerun trains only those missing",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of the search")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL of the study (postgresql://..., mysql://..., sqlite:///...), "
        "so that processes on several machines share it (default: SQLite in --out)",
    )
    parser.add_argument(
        "--study", default="dans", help="the study's name in its storage (default: dans)"
    )
    add_lease_flag(
        parser,
        "a trial whose process has not renewed its heartbeat for this long is failed and its "
        "parameters tried again",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per trial")
    add_settings_flags(parser)
    add_tracker_flags(parser)
    add_config_flags(parser)


def run(args: argparse.Namespace) -> None:
    base = config_from_args(args)
    space = read_space(args.space, base)
    options = TuneOptions(
        storage=args.storage,
        study=args.study,
        lease_seconds=args.lease,
        report=(lambda _: None) if args.quiet else print,
        trackers=tracker_spec(args, args.out, grouped=True),
    )
    result = tune(base, space, args.trials, args.out, options)
    searched = ", ".join(f"{d.key} = {result.best_config[d.key]!r}" for d in space)
    print(
        f"{result.finished} trials finished; best: trial {result.best_trial}, valid MRR "
        f"{result.best_valid_mrr:.4f} with {searched} ({result.seconds / 60:.1f} min here)"
    )
    charts = ", ".join(str(args.out / name) for name in (HISTORY_CHART, IMPORTANCE_CHART))
    print(
        f"best configuration: {args.out / CONFIG_FILE} (dans train --config); "
        f"{args.out / BEST_FILE}, {args.out / TRIALS_FILE}; charts: {charts}"
    )


COMMAND = Command(
    "tune",
    "search training settings with Optuna on the validation MRR",
    add_arguments,
    run,
)
