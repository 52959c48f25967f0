"""`dans split FILE --out DIR`: one file of triples cut into train, valid and test split files."""

from __future__ import annotations

import argparse
from pathlib import Path

from dans.cli.arguments import Command
from dans.data.graph import SPLITS
from dans.data.splits import split
from dans.data.triples import read_triples
from dans.errors import DansError
from dans.files import write_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="triples, one head<TAB>relation<TAB>tail a line")
    parser.add_argument("--out", type=Path, required=True, help="folder for the three split files")
    parser.add_argument("--valid", type=float, default=0.1, help="share held out for validation")
    parser.add_argument("--test", type=float, default=0.1, help="share held out for test")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle")


def run(args: argparse.Namespace) -> None:
    there = [args.out / f"{name}.txt" for name in SPLITS if (args.out / f"{name}.txt").exists()]
    if there:
        raise DansError(f"{there[0]}: exists; choose another --out (dans split replaces no file)")
    parts = split(read_triples(args.file), args.valid, args.test, args.seed)
    for name, triples in zip(SPLITS, parts, strict=True):
        text = "".join("\t".join(triple) + "\n" for triple in triples)
        write_output(args.out / f"{name}.txt", text.encode())
    sizes = ", ".join(f"{len(p)} {n}" for n, p in zip(SPLITS, parts, strict=True))
    print(f"{args.out}: {sizes}")


COMMAND = Command(
    "split",
    "cut one file of triples into train, valid and test split files",
    add_arguments,
    run,
)
