"""`dans datasets`: the named datasets, where they are, and the recipes; or fetch one."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command
from dans.cli.render import datasets_table
from dans.data.datasets import DATASETS, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--download",
        metavar="NAME",
        choices=sorted(DATASETS),
        help="fetch dataset NAME into the cache (checking each split's SHA-256) unless it is "
        f"already here, and print its folder; one of {', '.join(sorted(DATASETS))}",
    )


def run(args: argparse.Namespace) -> None:
    if args.download is not None:
        print(resolve(args.download))
        return
    print(datasets_table())


COMMAND = Command(
    "datasets",
    "list the named datasets and where they are, or download one",
    add_arguments,
    run,
)
