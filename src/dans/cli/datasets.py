"""`dans datasets`: the named datasets, where they are, and the recipes."""

from __future__ import annotations

import argparse

from dans.cli.arguments import Command
from dans.cli.render import datasets_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags."""


def run(_: argparse.Namespace) -> None:
    print(datasets_table())


COMMAND = Command("datasets", "list the named datasets and where they are", add_arguments, run)
