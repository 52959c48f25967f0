"""`dans datasets [list]`: the named datasets, where they are, and the recipes; `dans datasets
download NAME`: fetch one."""

from __future__ import annotations

import argparse
import warnings

from dans.cli.arguments import Command
from dans.cli.render import datasets_table
from dans.data.datasets import DATASETS, resolve

ACTIONS = ("list", "download")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(sorted(DATASETS))
    parser.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        default="list",
        help="list the datasets (the default), or download NAME into the cache (checking each "
        "split's SHA-256) unless it is already here, and print its folder",
    )
    parser.add_argument("name", nargs="?", choices=sorted(DATASETS), help=f"one of {names}")
    parser.add_argument(
        "--download",
        metavar="NAME",
        choices=sorted(DATASETS),
        help="the same as `dans datasets download NAME`, which replaces it",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--download NAME`` stands for ``download NAME`` for one release (:func:`run` warns)."""
    if args.download is not None:
        if args.name is not None:
            parser.error("give the dataset once: `dans datasets download NAME`")
        args.action, args.name = "download", args.download
    if args.action == "download" and args.name is None:
        parser.error(f"download needs a dataset NAME, one of {', '.join(sorted(DATASETS))}")
    if args.action == "list" and args.name is not None:
        parser.error("list takes no dataset name")


def run(args: argparse.Namespace) -> None:
    if args.download is not None:
        warnings.warn(
            "--download NAME is deprecated: use `dans datasets download NAME`", stacklevel=1
        )
    if args.action == "download":
        print(resolve(args.name))
        return
    print(datasets_table())


COMMAND = Command(
    "datasets",
    "list the named datasets and where they are, or download one",
    add_arguments,
    run,
    check=check,
)
