"""What the commands share: the command record, flag groups, argument types, building the
configuration from flags, and finding the pieces of a finished run."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dans import distributed
from dans.config import TrainConfig, renamed_keys
from dans.errors import DansError
from dans.experiments.claims import LEASE_SECONDS
from dans.experiments.grids import Grid, GridOptions
from dans.models import DECODERS, ENCODERS
from dans.options import flag_name, value_type
from dans.pipeline import CHECKPOINT_EVERY, load_run
from dans.recipes import recipe_names, recipe_settings
from dans.rundir import Run
from dans.samplers.base import sampler_names
from dans.samplers.dans import DANSSampler
from dans.tracking import NO_TRACKERS, TRACKERS, TrackerSpec
from dans.training.cadence import CheckpointCadence


@dataclass(frozen=True)
class Command:
    """One ``dans`` command: its flags, what it does, an optional check of the parsed
    arguments that reports a usage error through the parser, and, for a command that trains a
    grid, the grid its arguments describe (what ``run`` trains)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    check: Callable[[argparse.ArgumentParser, argparse.Namespace], None] | None = None
    grid: Callable[[argparse.Namespace], Grid] | None = None


# Settings that name a registered component: their flags take the names registered when the
# parser is built, a user's own components included.
REGISTERED: dict[str, Callable[[], list[str]]] = {
    "encoder": ENCODERS.names,
    "decoder": DECODERS.names,
    "sampler": sampler_names,
}


def add_config_flags(parser: argparse.ArgumentParser, leave_out: Sequence[str] = ()) -> None:
    """One flag per :class:`TrainConfig` key, under its section's or its component's heading (a
    component registered by then included); unset flags stay None so a --config file shows."""
    for name, options in TrainConfig.groups().items():
        specs = {key: spec for key, spec in options.specs().items() if key not in leave_out}
        if not specs:
            continue
        group = parser.add_argument_group(TrainConfig.heading(name))
        for key, spec in specs.items():
            help_text = f"{spec.metadata['help']} (default: {spec.default})"
            kind = value_type(spec)
            choices = REGISTERED[key]() if key in REGISTERED else spec.metadata.get("choices")
            if kind is bool:
                group.add_argument(
                    flag_name(key),
                    dest=key,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=help_text,
                )
            else:
                group.add_argument(
                    flag_name(key),
                    dest=key,
                    type=kind,
                    choices=choices,
                    default=None,
                    help=help_text,
                )
        for old_key, key in renamed_keys().items():
            if key in specs:
                add_renamed_flag(group, old_key, key, value_type(specs[key]))


def add_renamed_flag(group: argparse._ArgumentGroup, old_key: str, key: str, kind: type) -> None:
    """The flag of a renamed config key, kept for one release: it sets the new key and says so
    (a switch's ``--no-`` form too)."""
    new = flag_name(key)
    if kind is bool:
        negated = "--no-" + new.removeprefix("--")
        for flag, value, instead in ((old_key, True, new), ("no_" + old_key, False, negated)):
            group.add_argument(
                flag_name(flag),
                dest=key,
                action=deprecated(instead, const=value),
                help=argparse.SUPPRESS,
            )
        return
    group.add_argument(
        flag_name(old_key), dest=key, type=kind, action=deprecated(new), help=argparse.SUPPRESS
    )


def deprecated(new: str, const: object = None) -> type[argparse.Action]:
    """The action of an old spelling of a flag, kept for one release: it stores what ``new``
    stores (``const`` for a switch that stood for a value, such as ``--json`` for ``--format
    json``), and notes its use in ``args.deprecated`` for the command line's warning line."""

    class Alias(argparse.Action):
        def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
            if const is not None:
                kwargs["nargs"] = 0
            super().__init__(option_strings, dest, **kwargs)

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            setattr(namespace, self.dest, const if const is not None else values)
            said = getattr(namespace, "deprecated", [])
            namespace.deprecated = [*said, f"{option_string} is deprecated: use {new}"]

    return Alias


# ``--format``'s names, the same in every command: rows as aligned text, tab-separated or JSON;
# a grid's paper table as Markdown or LaTeX, or its results as JSON.
ROW_FORMATS = ("table", "tsv", "json")
TABLE_FORMATS = ("markdown", "latex", "json")


def add_format_flag(
    parser: argparse.ArgumentParser, choices: Sequence[str], old_json: bool = True
) -> None:
    """``--format``, the output format of every command that prints one (its first choice the
    default), and, ``old_json``, ``--json``: its old spelling for ``--format json``."""
    parser.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format (default: {choices[0]})",
    )
    if old_json:
        parser.add_argument(
            "--json",
            dest="format",
            action=deprecated("--format json", const="json"),
            help="the same as --format json, which replaces it",
        )


def file_in_out(name: str) -> Callable[[argparse.ArgumentParser, argparse.Namespace], None]:
    """The check of a command that writes one file, ``name``, into the folder ``--out``: it sets
    ``args.out_file``. An ``--out`` with ``name``'s suffix names the file itself, as it did
    before every ``--out`` was a folder; that is read for one release, with a deprecation line."""
    suffix = Path(name).suffix

    def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
        if args.out.suffix != suffix:
            args.out_file = args.out / name
            return
        args.out_file = args.out
        said = getattr(args, "deprecated", [])
        args.deprecated = [
            *said,
            f"--out FILE{suffix} is deprecated: --out is a folder, and {name} is written in it",
        ]

    return check


def seeds_arg(text: str) -> int | tuple[int, ...]:
    """``--seeds``: ``N`` for seeds 1..N, or ``1,3,7`` for those seeds."""
    try:
        if "," not in text:
            return positive_int(text)
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count or comma-separated seeds, got {text!r}"
        ) from None


def add_grid_flags(parser: argparse.ArgumentParser, leave_out: Sequence[str]) -> None:
    """The flags of every grid command: seeds, output, jobs, and each `dans train` flag that
    the grid does not set itself."""
    parser.add_argument(
        "--seeds",
        type=seeds_arg,
        default=5,
        help="a count N (seeds 1..N) or the seeds themselves, comma-separated (default 5)",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory of the grid")
    add_settings_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--format",
        choices=TABLE_FORMATS,
        default=TABLE_FORMATS[0],
        help="what is printed at the end: the table, as Markdown or LaTeX (both are written, as "
        "table.md and table.tex), or the rows of results.csv as JSON (default: markdown)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="runs trained at once, each in its own process with an equal share of the threads; "
        "the grid's bar then counts finished runs only (default 1)",
    )
    add_lease_flag(
        parser,
        "several processes, here or on machines sharing the folder, can work through one grid: "
        "each claims a run before training it and renews the claim while it trains; a claim not "
        "renewed for this long is taken over",
    )
    parser.add_argument(
        "--diversity",
        action="store_true",
        help="measure each finished run's negatives too (their spread, overlap and false "
        "negatives) into its diversity.json and results.csv's diversity columns",
    )
    add_checkpoint_flag(parser)
    add_tracker_flags(parser)
    add_config_flags(parser, leave_out=leave_out)


def add_tracker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracker",
        action="append",
        choices=TRACKERS.names(),
        help="log each run's settings, per-epoch metrics and final test metrics here too; "
        "repeat for several. csv and tensorboard write into --out, and so does mlflow (a "
        "SQLite store) unless --mlflow-uri names another",
    )
    parser.add_argument(
        "--mlflow-uri",
        metavar="URI",
        help="MLflow tracking URI for --tracker mlflow (a server, or a database URL)",
    )


def tracker_spec(args: argparse.Namespace, folder: Path, grouped: bool) -> TrackerSpec:
    """The trackers the flags ask for, writing under ``folder``: one run's own (``train``) or,
    ``grouped``, the many runs of a grid or a search, in an MLflow experiment named after the
    folder. Under ``torchrun`` only rank 0 logs."""
    if args.mlflow_uri is not None and "mlflow" not in (args.tracker or ()):
        raise DansError("--mlflow-uri needs --tracker mlflow")
    if not args.tracker or distributed.launch_rank() != 0:
        return NO_TRACKERS
    experiment = folder.resolve().name if grouped else "dans"
    return TrackerSpec(
        tuple(dict.fromkeys(args.tracker)), folder, experiment, args.mlflow_uri, grouped
    )


def add_lease_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--lease",
        type=positive_float,
        default=LEASE_SECONDS,
        metavar="SECONDS",
        help=f"{help_text} (default: {LEASE_SECONDS:g})",
    )


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"tuned settings for a large benchmark ({', '.join(recipe_names())}); a --config "
        "file and flags override them",
    )
    parser.add_argument("--config", type=Path, help="TOML file of settings; flags override it")


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-every",
        type=checkpoint_cadence,
        default=CHECKPOINT_EVERY,
        metavar="N|DURATION",
        help="save the whole training state every N epochs, or after each epoch that ends "
        "DURATION (90s, 5m) after the last save, and after the last epoch, so that a killed run "
        f"resumes from there (0: never; default {CHECKPOINT_EVERY})",
    )


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (a GPU when there is one), cpu, cuda or cuda:N (default: auto)",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def checkpoint_cadence(text: str) -> int | str:
    """``--checkpoint-every``'s value: a count of epochs as an int, or a duration as given."""
    try:
        cadence = CheckpointCadence.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return cadence.epochs if not cadence.seconds else text


def names(text: str) -> list[str]:
    found = [name.strip() for name in text.split(",") if name.strip()]
    if not found:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return found


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def config_from_args(
    args: argparse.Namespace, defaults: dict[str, Any] | None = None
) -> TrainConfig:
    """The flags over the --config file's settings, over the recipe's, over ``defaults``, over
    the built-in defaults."""
    defaults = defaults or {}
    if args.recipe is not None:
        defaults = {**defaults, **recipe_settings(args.recipe)}
    config = (
        TrainConfig.from_toml(args.config, defaults) if args.config else TrainConfig(**defaults)
    )
    overrides = {
        key: getattr(args, key)
        for key in TrainConfig.specs()
        if getattr(args, key, None) is not None
    }
    return config.replace(**overrides)


def grid_options(args: argparse.Namespace) -> GridOptions:
    return GridOptions(
        progress=not args.quiet,
        jobs=args.jobs,
        checkpoint_every=args.checkpoint_every,
        lease_seconds=args.lease,
        trackers=tracker_spec(args, args.out, grouped=True),
        diversity=args.diversity,
    )


def dans_run(path: Path, device: str, command: str) -> tuple[Run, DANSSampler]:
    """The run at ``path`` and its trained DANS sampler; refused unless it was trained with
    DANS."""
    run = load_run(path, device=device)
    if not isinstance(run.sampler, DANSSampler):
        raise DansError(
            f"{path}: trained with sampler {run.config.training.sampler!r}; "
            f"`dans {command}` needs a run trained with --sampler dans"
        )
    return run, run.sampler
