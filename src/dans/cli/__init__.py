"""dans: knowledge-graph embeddings with pluggable negative sampling (DANS and its baselines)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from dans.allocator import reuse_freed_memory
from dans.cli import (
    ablate,
    compare,
    datasets,
    diversity,
    evaluate,
    export,
    names,
    negatives,
    plot,
    predict,
    split,
    sweep,
    train,
    tune,
    visualize,
)
from dans.cli.arguments import Command
from dans.errors import DansError, DansFailure
from dans.experiments.grids import Grid
from dans.version import __version__

# Exit codes: bad input or usage, and a command that could not do what was asked (a full disk,
# a diverged run); 130 on Ctrl-C.
EXIT_USAGE, EXIT_FAILURE = 2, 1
# 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe.
EXIT_BROKEN_PIPE = 141
COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        train.COMMAND,
        evaluate.COMMAND,
        predict.COMMAND,
        export.COMMAND,
        names.ENTITIES,
        names.RELATIONS,
        negatives.COMMAND,
        compare.COMMAND,
        ablate.COMMAND,
        sweep.COMMAND,
        tune.COMMAND,
        diversity.COMMAND,
        visualize.COMMAND,
        plot.COMMAND,
        datasets.COMMAND,
        split.COMMAND,
    )
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line, without the usage block, and takes no
    abbreviated flags: ``dans compare --sampler`` must not quietly mean ``--samplers``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``dans`` parser, and each command's own parser by name."""
    parser = _Parser(prog="dans", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dans {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    by_name = {}
    for name, command in COMMANDS.items():
        by_name[name] = subparsers.add_parser(name, help=command.help)
        command.add_arguments(by_name[name])
    return parser, by_name


def command_parser() -> argparse.ArgumentParser:
    """The ``dans`` parser alone, as the CLI reference documents it."""
    return build_parser()[0]


def _one_line(message: object) -> str:
    """A message on one line even when a path in it holds a line break."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def run() -> int:
    """The ``dans`` command: :func:`main` in a process whose allocator keeps freed memory for
    reuse (see :mod:`dans.allocator`)."""
    reuse_freed_memory()
    return main()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` (the arguments after ``dans``) parsed and checked as the ``dans`` command does;
    a usage error exits as it does."""
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    if command.check is not None:
        command.check(parsers[args.command], args)
    return args


def grid_of(argv: Sequence[str]) -> tuple[argparse.Namespace, Grid]:
    """The parsed arguments of a grid command (``argv`` such as ``["compare", "--recipe",
    "wn18rr", ...]``) and the grid it would train, built as the command builds it; trains
    nothing and writes nothing."""
    args = parse_args(argv)
    build = COMMANDS[args.command].grid
    if build is None:
        raise DansError(f"dans {args.command} trains no grid")
    return args, build(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = COMMANDS[args.command]

    def show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
        print(f"dans {args.command}: warning: {_one_line(message)}", file=sys.stderr)

    try:
        # One line per warning, as errors are, instead of Python's two with a source line.
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            for line in getattr(args, "deprecated", []):
                warnings.warn(line, stacklevel=1)
            command.run(args)
    except DansError as exc:
        print(f"dans {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE if isinstance(exc, DansFailure) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dans {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (head, less) closed the pipe: stop quietly, as a Unix tool does, and keep
        # Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return 0
