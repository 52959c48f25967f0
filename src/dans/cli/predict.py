"""`dans predict RUN`: the best entities for a query, or for a file of queries, by name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dans.cli.arguments import ROW_FORMATS, Command, add_device_flag, add_format_flag, positive_int
from dans.cli.render import prediction_rows, predictions_table, rows_tsv
from dans.pipeline import load_run
from dans.prediction import ASKED, Query, predict, read_queries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by `dans train`")
    asked = parser.add_mutually_exclusive_group(required=True)
    asked.add_argument("--head", help="query (HEAD, RELATION, ?): rank the tails")
    asked.add_argument("--tail", help="query (?, RELATION, TAIL): rank the heads")
    asked.add_argument(
        "--queries",
        type=Path,
        help=f"TSV of queries, head<TAB>relation<TAB>tail per line with {ASKED} for the entity "
        "asked for",
    )
    parser.add_argument("--relation", help="relation name (with --head or --tail)")
    parser.add_argument(
        "--k", type=positive_int, default=10, help="entities per query (default 10)"
    )
    parser.add_argument(
        "--exclude-train",
        action="store_true",
        help="leave out entities that complete a train triple: propose new facts only",
    )
    add_format_flag(parser, ROW_FORMATS, old_json=False)
    add_device_flag(parser)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.queries is None) == (args.relation is None):
        parser.error("give --relation with --head or --tail, and not with --queries")


def run(args: argparse.Namespace) -> None:
    if args.queries is not None:
        queries = read_queries(args.queries)
    elif args.head is not None:
        queries = [Query(args.head, args.relation, ASKED)]
    else:
        queries = [Query(ASKED, args.relation, args.tail)]
    finished = load_run(args.run, device=args.device)
    found = predict(finished, queries, k=args.k, exclude_train=args.exclude_train)
    if args.format == "json":
        rows = [
            {
                "query": [p.query.head, p.query.relation, p.query.tail],
                "entities": p.entities,
                "scores": p.scores,
            }
            for p in found
        ]
        print(json.dumps(rows, indent=2))
    elif args.format == "tsv":
        print(rows_tsv(prediction_rows(found)), end="")
    else:
        print("\n\n".join(predictions_table(prediction) for prediction in found))


COMMAND = Command(
    "predict",
    "the best entities for (HEAD, RELATION, ?) or (?, RELATION, TAIL), or a file of queries",
    add_arguments,
    run,
    check,
)
