"""`dans evaluate RUN`: the filtered metrics of a run's best checkpoint on one split."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from dans.cli.arguments import (
    ROW_FORMATS,
    Command,
    add_device_flag,
    add_format_flag,
    deprecated,
    natural_int,
    positive_float,
)
from dans.cli.render import (
    evaluation_rows,
    metrics_table,
    relation_rows,
    relations_table,
    rows_tsv,
)
from dans.config import TIE_POLICIES
from dans.evaluation.metrics import evaluate, evaluate_by_relation
from dans.evaluation.ranking import DEFAULT_MEMORY_MB
from dans.pipeline import load_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by `dans train`")
    parser.add_argument(
        "--split", choices=("valid", "test"), default="test", help="split (default: test)"
    )
    parser.add_argument(
        "--ties",
        choices=TIE_POLICIES,
        default="realistic",
        help="rank of a true entity tied with others: realistic (the mean of the tied "
        "positions), optimistic (the best) or pessimistic (the worst) (default: realistic)",
    )
    add_device_flag(parser)
    parser.add_argument(
        "--eval-memory-mb",
        dest="memory_mb",
        type=positive_float,
        default=DEFAULT_MEMORY_MB,
        help=f"MB of scores held at once while ranking (default: {DEFAULT_MEMORY_MB})",
    )
    parser.add_argument(
        "--memory-mb",
        dest="memory_mb",
        type=positive_float,
        action=deprecated("--eval-memory-mb"),
        help="the same as --eval-memory-mb, which replaces it",
    )
    parser.add_argument(
        "--eval-candidates",
        dest="candidates",
        type=natural_int,
        default=0,
        help="rank each query against this many entities drawn at random (seeded by the run), "
        "a sampled protocol named so in the output, instead of every entity (default: 0, "
        "every entity)",
    )
    parser.add_argument(
        "--by",
        choices=("relation",),
        help="the metrics of each relation's triples, one row per relation",
    )
    add_format_flag(parser, ROW_FORMATS)


def run(args: argparse.Namespace) -> None:
    finished = load_run(args.run, device=args.device)
    if finished.metrics is None:
        warnings.warn(
            f"{args.run} did not finish: evaluating its best checkpoint so far, from epoch "
            f"{finished.epoch}; `dans train --resume {args.run}` finishes it",
            stacklevel=1,
        )
    settings = {
        "split": args.split,
        "ties": args.ties,
        "memory_mb": args.memory_mb,
        "candidates": args.candidates,
        "seed": finished.config.runtime.seed,
    }
    title = f"{finished.kg.name} {args.split} ({args.ties} ranks, filtered):"
    if args.by == "relation":
        found = evaluate_by_relation(finished.model, finished.kg, **settings)
        if args.format == "json":
            print(json.dumps({name: e.to_dict() for name, e in found.items()}, indent=2))
        elif args.format == "tsv":
            print(rows_tsv(relation_rows(found)), end="")
        else:
            print(relations_table(found, title))
        return
    result = evaluate(finished.model, finished.kg, **settings)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    elif args.format == "tsv":
        print(rows_tsv(evaluation_rows(result)), end="")
    else:
        print(metrics_table(result, title))


COMMAND = Command("evaluate", "evaluate a finished run", add_arguments, run)
