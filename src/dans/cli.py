"""dans: knowledge-graph embeddings with pluggable negative sampling (DANS and its baselines)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from dans import distributed
from dans.config import TIE_POLICIES, TrainConfig
from dans.data.datasets import DATASETS, locate
from dans.errors import DansError
from dans.evaluation.metrics import METRIC_NAMES, evaluate
from dans.evaluation.ranking import DEFAULT_MEMORY_MB
from dans.experiments.ablate import ABLATION_KEYS, ablate
from dans.experiments.ablate import CHART_FILE as ABLATION_CHART
from dans.experiments.compare import GRID_KEYS, compare
from dans.experiments.diversity import DIVERSITY_COLUMNS, DIVERSITY_POSITIVES, measure_diversity
from dans.experiments.grids import RESULTS_FILE, TABLE_FILE, GridOptions
from dans.experiments.sweep import CHART_FILE as SWEEP_CHART
from dans.experiments.sweep import sweep
from dans.experiments.visualize import CHART_FILE as VISUAL_CHART
from dans.experiments.visualize import POINTS_FILE as VISUAL_POINTS
from dans.experiments.visualize import negative_tails, project, write_visualization
from dans.options import flag_name
from dans.pipeline import CHECKPOINT_EVERY, load_run, resume, train
from dans.recipes import describe, recipe, recipe_names, recipe_settings
from dans.rundir import Run, write_output
from dans.samplers.dans import DANSSampler
from dans.samplers.dans.hardest import hardest_negatives

EXIT_USAGE = 2
# The samplers and decoders of the paper's Tables 2 and 3, in its order.
COMPARED_SAMPLERS = (
    "uniform",
    "popularity",
    "self-adv",
    "mcns",
    "nscaching",
    "kbgan",
    "sans",
    "dans",
)
COMPARED_DECODERS = ("distmult", "complex", "rotate")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line, without the usage block, and takes no
    abbreviated flags: ``dans compare --sampler`` must not quietly mean ``--samplers``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_config_flags(parser: argparse.ArgumentParser, leave_out: Sequence[str] = ()) -> None:
    """One flag per :class:`TrainConfig` key; unset flags stay None so a --config file shows."""
    for spec in dataclasses.fields(TrainConfig):
        if spec.name in leave_out:
            continue
        flag = flag_name(spec.name)
        help_text = f"{spec.metadata['help']} (default: {spec.default})"
        if spec.type == "bool":
            parser.add_argument(
                flag,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(spec.type)]
            parser.add_argument(flag, dest=spec.name, type=kind, default=None, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dans", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train_cmd = commands.add_parser("train", help="train a model and report its metrics")
    _add_settings_flags(train_cmd)
    train_cmd.add_argument("--out", type=Path, help="run directory to write")
    train_cmd.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train_cmd.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish the killed run RUN from its last saved state, with its own config.toml "
        "(no other settings); a finished RUN is only reported",
    )
    train_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_checkpoint_flag(train_cmd)
    _add_config_flags(train_cmd)

    evaluate_cmd = commands.add_parser("evaluate", help="evaluate a finished run")
    evaluate_cmd.add_argument("run", type=Path, help="run directory written by `dans train`")
    evaluate_cmd.add_argument("--split", choices=("valid", "test"), default="test")
    evaluate_cmd.add_argument("--ties", choices=TIE_POLICIES, default="realistic")
    evaluate_cmd.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    evaluate_cmd.add_argument(
        "--memory-mb",
        type=_positive_float,
        default=DEFAULT_MEMORY_MB,
        help=f"MB of scores held at once while ranking (default: {DEFAULT_MEMORY_MB})",
    )
    evaluate_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")

    negatives_cmd = commands.add_parser(
        "negatives", help="the hardest negatives a trained DANS generator proposes for a query"
    )
    negatives_cmd.add_argument("run", type=Path, help="run directory of a `--sampler dans` run")
    side = negatives_cmd.add_mutually_exclusive_group(required=True)
    side.add_argument("--head", help="query (HEAD, RELATION, ?): replace the tail")
    side.add_argument("--tail", help="query (?, RELATION, TAIL): replace the head")
    negatives_cmd.add_argument("--relation", required=True, help="relation name")
    negatives_cmd.add_argument("--k", type=_positive_int, default=10, help="how many (default 10)")
    negatives_cmd.add_argument(
        "--samples", type=_positive_int, default=100, help="fakes per pathway (default 100)"
    )
    negatives_cmd.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    negatives_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")

    compare_cmd = commands.add_parser(
        "compare", help="train samplers x decoders x seeds and write the paper's comparison table"
    )
    compare_cmd.add_argument(
        "--samplers",
        type=_names,
        default=list(COMPARED_SAMPLERS),
        help=f"comma-separated (default: {','.join(COMPARED_SAMPLERS)})",
    )
    compare_cmd.add_argument(
        "--decoders",
        type=_names,
        default=list(COMPARED_DECODERS),
        help=f"comma-separated (default: {','.join(COMPARED_DECODERS)})",
    )
    _add_grid_flags(compare_cmd, leave_out=GRID_KEYS)

    ablate_cmd = commands.add_parser(
        "ablate", help="DANS against G_E only, G_R only and both without FiLM (Fig. 2(a))"
    )
    _add_grid_flags(ablate_cmd, leave_out=ABLATION_KEYS)

    sweep_cmd = commands.add_parser(
        "sweep", help="test metrics against one numeric setting over seeds (Fig. 2(b), 2(c))"
    )
    sweep_cmd.add_argument(
        "--param",
        required=True,
        help="the setting: a `dans train` flag or key such as negatives or dans-film-lambda "
        "(n_negatives and lambda are accepted too)",
    )
    sweep_cmd.add_argument("--values", type=_names, required=True, help="comma-separated values")
    _add_grid_flags(sweep_cmd, leave_out=("seed",))

    diversity_cmd = commands.add_parser(
        "diversity", help="measure how diverse a trained run's negatives are (any sampler)"
    )
    diversity_cmd.add_argument("run", type=Path, help="run directory written by `dans train`")
    diversity_cmd.add_argument("--out", type=Path, required=True, help="JSON file to write")
    diversity_cmd.add_argument(
        "--max-positives",
        type=_positive_int,
        default=DIVERSITY_POSITIVES,
        help=f"train positives measured, a seeded random subset (default {DIVERSITY_POSITIVES})",
    )
    diversity_cmd.add_argument("--seed", type=int, help="seed of the draws (default: the run's)")
    diversity_cmd.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")

    visualize_cmd = commands.add_parser(
        "visualize", help="t-SNE of a relation's positive tails and DANS's negatives (Fig. 3)"
    )
    visualize_cmd.add_argument("run", type=Path, help="run directory of a `--sampler dans` run")
    visualize_cmd.add_argument("--relation", required=True, help="relation name")
    visualize_cmd.add_argument("--out", type=Path, required=True, help="folder for the PNG and CSV")
    visualize_cmd.add_argument(
        "--max-positives",
        type=_positive_int,
        default=300,
        help="train triples of the relation drawn, a seeded random subset (default 300)",
    )
    visualize_cmd.add_argument("--seed", type=int, help="seed of the draws (default: the run's)")
    visualize_cmd.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")

    commands.add_parser("datasets", help="list the named datasets and where they are")
    return parser


def _add_grid_flags(parser: argparse.ArgumentParser, leave_out: Sequence[str]) -> None:
    """The flags of every grid command: seeds, output, jobs, and each `dans train` flag that
    the grid does not set itself."""
    parser.add_argument("--seeds", type=_positive_int, default=5, help="seeds 1..N (default 5)")
    parser.add_argument("--out", type=Path, required=True, help="directory of the grid")
    _add_settings_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="runs trained at once, each in its own process with an equal share of the threads; "
        "the grid's bar then counts finished runs only (default 1)",
    )
    _add_checkpoint_flag(parser)
    _add_config_flags(parser, leave_out=leave_out)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"tuned settings for a large benchmark ({', '.join(recipe_names())}); a --config "
        "file and flags override them",
    )
    parser.add_argument("--config", type=Path, help="TOML file of settings; flags override it")


def _add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-every",
        type=_natural_int,
        default=CHECKPOINT_EVERY,
        metavar="N",
        help="save the whole training state every N epochs and after the last, so that a "
        f"killed run resumes from there (0: never; default {CHECKPOINT_EVERY})",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return names


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def _config_from_args(
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
        spec.name: getattr(args, spec.name)
        for spec in dataclasses.fields(TrainConfig)
        if getattr(args, spec.name, None) is not None
    }
    return dataclasses.replace(config, **overrides)


def format_metrics(metrics: dict[str, Any], title: str) -> str:
    keys = METRIC_NAMES
    lines = [title, f"{'':8}" + "".join(f"{key:>10}" for key in keys)]
    for label, values in (("both", metrics), ("head", metrics["head"]), ("tail", metrics["tail"])):
        lines.append(f"{label:8}" + "".join(f"{values[key]:>10.4f}" for key in keys))
    return "\n".join(lines)


def _train(args: argparse.Namespace) -> None:
    try:
        if args.resume is not None:
            run = resume(
                args.resume, progress=not args.quiet, checkpoint_every=args.checkpoint_every
            )
        else:
            run = train(
                _config_from_args(args),
                out=args.out,
                overwrite=args.overwrite,
                progress=not args.quiet,
                checkpoint_every=args.checkpoint_every,
            )
        reports = distributed.world().main  # under torchrun, rank 0 reports for the group
    finally:
        distributed.stop()
    if not reports:
        return
    config, metrics = run.config, run.metrics or {}
    print(
        f"{metrics['dataset']}: {config.encoder} + {config.decoder}, sampler {config.sampler}, "
        f"seed {config.seed}; {metrics['epochs']} epochs in {metrics['train_seconds']:.1f} s "
        f"({metrics['seconds_per_epoch']:.3f} s/epoch), best valid MRR "
        f"{metrics['valid']['mrr']:.4f} at epoch {metrics['best_epoch']}"
    )
    print(format_metrics(metrics["test"], f"test ({config.ties} ranks, filtered):"))
    if run.path is not None:
        print(f"run written to {run.path}")


def _evaluate(args: argparse.Namespace) -> None:
    run = load_run(args.run, device=args.device)
    metrics = evaluate(
        run.model, run.kg, split=args.split, ties=args.ties, memory_mb=args.memory_mb
    ).to_dict()
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_metrics(metrics, f"{run.kg.name} {args.split} ({args.ties} ranks, filtered):"))


def _negatives(args: argparse.Namespace) -> None:
    run, sampler = _dans_run(args.run, args.device, "negatives")
    kg = run.kg
    replace_head = args.tail is not None
    anchor_name = args.tail if replace_head else args.head
    anchor = _lookup(kg.entity_to_id, anchor_name, "entity", kg.name)
    relation = _lookup(kg.relation_to_id, args.relation, "relation", kg.name)
    found = hardest_negatives(
        run.model,
        sampler,
        kg.known_triples,
        anchor,
        relation,
        replace_head,
        k=args.k,
        samples=args.samples,
        seed=run.config.seed,
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
    if args.json:
        print(json.dumps({"query": query, "negatives": rows}, indent=2))
        return
    print(
        f"hardest DANS negatives for {query}: {args.samples} fakes per pathway snapped to real "
        "entities that complete no known triple (train, valid or test)"
    )
    width = max([len("entity"), *(len(row["entity"]) for row in rows)])
    print(f"{'rank':>4}  {'entity':{width}}  {'score':>9}  {'distance':>9}  pathways")
    for rank, row in enumerate(rows, 1):
        print(
            f"{rank:>4}  {row['entity']:{width}}  {row['score']:>9.4f}  {row['distance']:>9.4f}  "
            f"{row['pathways']}"
        )


def _compare(args: argparse.Namespace) -> None:
    rows = compare(
        _config_from_args(args),
        args.samplers,
        args.decoders,
        args.seeds,
        args.out,
        _grid_options(args),
    )
    _print_grid(args.out, rows)


def _ablate(args: argparse.Namespace) -> None:
    rows = ablate(_config_from_args(args), args.seeds, args.out, _grid_options(args))
    _print_grid(args.out, rows, ABLATION_CHART)


def _sweep(args: argparse.Namespace) -> None:
    # The paper's sweeps are of DANS: it is the sampler unless a flag or --config names another.
    rows = sweep(
        _config_from_args(args, defaults={"sampler": "dans"}),
        args.param,
        args.values,
        args.seeds,
        args.out,
        _grid_options(args),
    )
    _print_grid(args.out, rows, SWEEP_CHART)


def _grid_options(args: argparse.Namespace) -> GridOptions:
    return GridOptions(
        progress=not args.quiet, jobs=args.jobs, checkpoint_every=args.checkpoint_every
    )


def _print_grid(out: Path, rows: list[dict[str, str]], chart: str = "") -> None:
    print((out / TABLE_FILE).read_text(), end="")
    print(f"{len(rows)} runs in {out / RESULTS_FILE}")
    if chart and (out / chart).exists():
        print(f"chart: {out / chart}")


def _diversity(args: argparse.Namespace) -> None:
    run = load_run(args.run, device=args.device)
    seed = run.config.seed if args.seed is None else args.seed
    found = measure_diversity(
        run.model, run.sampler, run.kg, seed, args.max_positives, run.config.batch_size
    )
    found = {"run": str(args.run), "sampler": run.config.sampler, "seed": seed, **found}
    write_output(args.out, (json.dumps(found, indent=2) + "\n").encode())
    for key in DIVERSITY_COLUMNS:
        value = found[key]
        print(f"{key:24}{'–' if value is None else f'{value:.4f}'}")
    print(f"written to {args.out}")


def _visualize(args: argparse.Namespace) -> None:
    run, sampler = _dans_run(args.run, args.device, "visualize")
    relation = _lookup(run.kg.relation_to_id, args.relation, "relation", run.kg.name)
    seed = run.config.seed if args.seed is None else args.seed
    points = negative_tails(run, sampler, relation, args.max_positives, seed)
    coordinates = project(torch.stack([point.vector for point in points]), seed)
    title = (
        f"{run.kg.name}, relation {args.relation}: positive tails and the negative tails made "
        "for the same heads (t-SNE)"
    )
    write_visualization(points, coordinates, title, args.out)
    print(f"{len(points)} points: {args.out / VISUAL_CHART}, {args.out / VISUAL_POINTS}")


def _dans_run(path: Path, device: str, command: str) -> tuple[Run, DANSSampler]:
    """The run at ``path`` and its trained DANS sampler; refused unless it was trained with
    DANS."""
    run = load_run(path, device=device)
    if not isinstance(run.sampler, DANSSampler):
        raise DansError(
            f"{path}: trained with sampler {run.config.sampler!r}; "
            f"`dans {command}` needs a run trained with --sampler dans"
        )
    return run, run.sampler


def _lookup(vocabulary: dict[str, int], name: str, kind: str, dataset: str) -> int:
    try:
        return vocabulary[name]
    except KeyError:
        raise DansError(f"unknown {kind} {name!r}: it does not occur in {dataset}") from None


def _datasets(_: argparse.Namespace) -> None:
    print(f"{'name':12}{'entities':>10}{'relations':>10}{'train':>9}{'valid':>8}{'test':>8}  where")
    for info in DATASETS.values():
        folder = locate(info.name)
        where = str(folder) if folder else f"not here ({'downloadable' if info.url else info.note})"
        print(
            f"{info.name:12}{info.entities:>10,}{info.relations:>10,}{info.train:>9,}"
            f"{info.valid:>8,}{info.test:>8,}  {where}"
        )
    print(f"\n{'recipe':12}{'dataset':12}  use with `dans train --recipe NAME`")
    for name in recipe_names():
        print(f"{name:12}{recipe(name).dataset:12}  {describe(name)}")


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "negatives": _negatives,
    "compare": _compare,
    "ablate": _ablate,
    "sweep": _sweep,
    "diversity": _diversity,
    "visualize": _visualize,
    "datasets": _datasets,
}


def _one_line(message: object) -> str:
    """A message on one line even when a path in it holds a line break."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def _refuse_settings_beside_resume(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    """``--resume`` takes every setting from the run's config.toml: another one would be silently
    ignored, or make the finished run differ from an uninterrupted one."""
    settings = [spec.name for spec in dataclasses.fields(TrainConfig)]
    settings += ["recipe", "config", "out"]
    given = [flag_name(name) for name in settings if getattr(args, name) is not None]
    given += ["--overwrite"] if args.overwrite else []
    if given:
        parser.error(
            f"--resume takes its settings from RUN/config.toml; leave out {', '.join(given)}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.resume is not None:
        _refuse_settings_beside_resume(parser, args)

    def show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
        print(f"dans {args.command}: warning: {_one_line(message)}", file=sys.stderr)

    try:
        # One line per warning, as errors are, instead of Python's two with a source line.
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            COMMANDS[args.command](args)
    except DansError as exc:
        print(f"dans {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dans {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
