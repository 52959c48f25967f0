"""`dans entities` and `dans relations`: the names of a run's or a dataset's graph, by id."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dans.cli.arguments import Command
from dans.data.datasets import load_dataset
from dans.data.graph import KnowledgeGraph
from dans.pipeline import run_graph
from dans.rundir import RunDirectory, id_map


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("run", nargs="?", type=Path, help="run directory written by `dans train`")
    source.add_argument("--dataset", help="a named dataset instead of a run")
    source.add_argument("--data-dir", type=Path, help="a folder of split files instead of a run")


def _graph(args: argparse.Namespace) -> KnowledgeGraph:
    if args.run is not None:
        run_dir = RunDirectory(args.run)
        return run_graph(run_dir, run_dir.read_config())
    return load_dataset(args.dataset, args.data_dir)


def _listing(
    names_of: Callable[[KnowledgeGraph], list[str]],
) -> Callable[[argparse.Namespace], None]:
    """A command that prints the names ``names_of`` picks from the graph, as ``id<TAB>name``."""

    def run(args: argparse.Namespace) -> None:
        print(id_map(names_of(_graph(args))).decode(), end="")

    return run


ENTITIES = Command(
    "entities",
    "list a run's or a dataset's entities: id, then name",
    add_arguments,
    _listing(lambda kg: kg.entity_names),
)
RELATIONS = Command(
    "relations",
    "list a run's or a dataset's relations: id, then name",
    add_arguments,
    _listing(lambda kg: kg.relation_names),
)
