"""`dans negatives RUN`: the hardest negatives a trained DANS generator proposes for a query."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dans.cli.arguments import (
    ROW_FORMATS,
    Command,
    add_device_flag,
    add_format_flag,
    dans_run,
    positive_int,
)
from dans.cli.render import negatives_table, rows_tsv
from dans.experiments.hardest import hardest_negatives


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory of a `--sampler dans` run")
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--head", help="query (HEAD, RELATION, ?): replace the tail")
    side.add_argument("--tail", help="query (?, RELATION, TAIL): replace the head")
    parser.add_argument("--relation", required=True, help="relation name")
    parser.add_argument("--k", type=positive_int, default=10, help="how many (default 10)")
    parser.add_argument(
        "--samples", type=positive_int, default=100, help="fakes per pathway (default 100)"
    )
    add_device_flag(parser)
    add_format_flag(parser, ROW_FORMATS)


def run(args: argparse.Namespace) -> None:
    finished, sampler = dans_run(args.run, args.device, "negatives")
    kg = finished.kg
    replace_head = args.tail is not None
    anchor_name = args.tail if replace_head else args.head
    anchor = kg.entity_id(anchor_name)
    relation = kg.relation_id(args.relation)
    found = hardest_negatives(
        finished.model,
        sampler,
        kg.known_triples,
        anchor,
        relation,
        replace_head,
        k=args.k,
        samples=args.samples,
        seed=finished.config.runtime.seed,
    )
    rows = [
        {"entity": kg.entity_names[i], "score": score, "distance": distance, "pathways": made_by}
        for i, score, distance, made_by in zip(
            found.ids.tolist(),
            found.scores.tolist(),
            found.distances.tolist(),
            found.pathways,
            strict=True,
        )
    ]
    query = (
        f"(?, {args.relation}, {anchor_name})"
        if replace_head
        else (f"({anchor_name}, {args.relation}, ?)")
    )
    if args.format == "json":
        print(json.dumps({"query": query, "negatives": rows}, indent=2))
        return
    if args.format == "tsv":
        print(rows_tsv([{"rank": rank, **row} for rank, row in enumerate(rows, 1)]), end="")
        return
    print(
        f"hardest DANS negatives for {query}: {args.samples} fakes per pathway snapped to real "
        "entities that complete no known triple (train, valid or test)"
    )
    print(negatives_table(rows))


COMMAND = Command(
    "negatives",
    "the hardest negatives a trained DANS generator proposes for a query",
    add_arguments,
    run,
)
