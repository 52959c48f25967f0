"""The runs the paper's grids still have to train, and the time they would take here, on one
core.

    OMP_NUM_THREADS=1 DANS_DATA_DIR=DATASETS python benchmarks/pending.py --measure
    python benchmarks/pending.py
    python benchmarks/pending.py --restore-into GRIDS
    python benchmarks/pending.py --collect GRIDS
    OMP_NUM_THREADS=1 DANS_DATA_DIR=DATASETS python benchmarks/pending.py --run GRIDS

Each grid of :func:`plan` is a command of the results pages, its results kept in a folder
under benchmarks/results. A run is done when that folder's results.csv holds it (finished or
diverged). A run not done is copied rather than trained when a done run has the same settings
(the full DANS of the ablation is the tables' DANS) and its record is kept (under its folder's
runs/); of several runs not done with the same settings, the first in the plan trains and the
others copy it.

--measure times each configuration still to train on one thread (``--threads``), untrained:
one training epoch after a warm-up step, and for each graph and decoder one validation and one
test ranking (which cost the same whatever the weights), and adds the timings to
benchmarks/results/pending/pending.json. A run's time is its epochs' + its validations' (one
every ``eval_every`` epochs and one after the last) + its test's. The table it prints is the one
`benchmarks/render_docs.py` renders on the large-graphs page from the timings there, so that
the counts follow new results without timing again.

--restore-into GRIDS prepares a folder of grids (each grid in GRIDS/FOLDER, its command run
with --out GRIDS/FOLDER) to go on from the committed results on a new machine: it copies each
done run's record there, and the record of each run to copy, from benchmarks/results or from
a grid under GRIDS that has finished it, so that the grid counts it as done. --collect GRIDS
does the reverse for the ablations and sweeps: their results.csv, table.md and run records go
to benchmarks/results/FOLDER (the comparisons join their tables through paper_tables.py).
--run GRIDS trains the whole plan there, one command after another, restoring before each; run
again after any stop, it goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from dans import cli
from dans.allocator import reuse_freed_memory
from dans.builders import load_graph
from dans.cli.arguments import config_from_args
from dans.config import TrainConfig
from dans.data import KnowledgeGraph
from dans.evaluation import evaluate
from dans.experiments import paper
from dans.experiments.compare import KEY_COLUMNS
from dans.experiments.grids import PLACEMENT_KEYS, RUNS_FOLDER, TABLE_FILE, Grid, GridRun
from dans.experiments.results import RESULTS_FILE, GridRow, read_rows
from dans.files import write_atomic
from dans.pipeline import build_trainer
from dans.rundir import DIVERGED_FILE, METRICS_FILE
from paper_tables import copy_record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TIMINGS = RESULTS / "pending" / "pending.json"
# The folder of grids in the plan's commands, as the results pages write them.
GRIDS = "GRIDS"
# Every command of the plan trains on the CPU with a line per run, one run at a time (two for
# the large graphs' DistMult tables, which ran so); 5 seeds in UMLS's tables, 3 elsewhere.
PLACE = "--device cpu --quiet"
# UMLS's tables: every sampler with every decoder, DANS also as the authors' code runs, and
# 1-vs-all, the negatives' own diversity measured.
UMLS_TABLE = (
    f"--dataset umls --samplers {','.join((*paper.SAMPLERS, 'dans-authors-code', 'all-entities'))}"
)
# The samplers of the paper's Table 2 for ComplEx and RotatE (its DistMult block has them all).
TABLE = "--samplers uniform,popularity,self-adv,mcns,nscaching,dans,dans-authors"
# The large graphs: (recipe, title, folder prefix).
GRAPHS = (("wn18rr", "WN18RR", "wn18rr"), ("nell-995", "NELL-995", "nell"))
# Figure 2's graphs: (how the command names its data, title, folder prefix).
FIGURE2_GRAPHS = (
    ("--dataset umls", "UMLS", "umls"),
    *((f"--recipe {name}", graph, folder) for name, graph, folder in GRAPHS),
)


@dataclass(frozen=True)
class PlannedGrid:
    """A grid of the results pages: what the table calls it, which block of commands on the
    results pages lists it (``part``: umls-table for UMLS's tables, table for the large graphs',
    figure2, or rest for FB15k-237 and 1-vs-all),
    its command (``--out GRIDS/FOLDER``), the folder under benchmarks/results that keeps its
    results, its runs as the command builds them, and the configuration its runs vary (the
    command's recipe and flags), from which a run's timing name says what changed."""

    title: str
    part: str
    command: str
    folder: str
    grid: Grid
    base: TrainConfig

    @classmethod
    def of(cls, title: str, part: str, command: str) -> PlannedGrid:
        """The grid that ``command`` (``dans compare``, ``ablate`` or ``sweep``) trains."""
        args, grid = cli.grid_of(shlex.split(command)[1:])
        return cls(title, part, command, args.out.name, grid, config_from_args(args))


def plan() -> list[PlannedGrid]:
    """The paper's grids in the order they run: UMLS's tables, the large graphs' Table 2
    (DistMult done first), Figure 2 on UMLS and the large graphs, FB15k-237 with ComplEx, and
    the 1-vs-all reference on the large graphs' DistMult tables."""
    return [PlannedGrid.of(title, part, command) for title, part, command in _plan_commands()]


def _plan_commands() -> Iterator[tuple[str, str, str]]:
    """Each planned grid's title, part and command, in plan order."""
    # One command for the three decoders: its results.csv holds every run of the table.
    yield (
        "UMLS, Tables 2 and 3",
        "umls-table",
        f"dans compare {UMLS_TABLE} --decoders distmult,complex,rotate --seeds 5 --jobs 1 "
        f"--diversity {PLACE} --out {GRIDS}/umls_table",
    )
    for name, graph, folder in GRAPHS:
        out = f"{PLACE} --out {GRIDS}/{folder}_table"
        yield (
            f"{graph}, Table 2, DistMult",
            "table",
            f"dans compare --recipe {name} --samplers {','.join(paper.SAMPLERS)} "
            f"--decoders distmult --seeds 3 --jobs 2 {out}",
        )
        yield (
            f"{graph}, Table 2, ComplEx and RotatE",
            "table",
            f"dans compare --recipe {name} {TABLE} --decoders complex,rotate --seeds 3 --jobs 1 "
            f"{out}",
        )
    for source, graph, folder in FIGURE2_GRAPHS:
        grid = f"--seeds 3 --jobs 1 {PLACE} --out {GRIDS}/{folder}"
        yield (
            f"{graph}, Figure 2(a), ablation",
            "figure2",
            f"dans ablate {source} {grid}_ablation",
        )
        for figure, param, values in (
            ("(b), N_s", "negatives", "1,5,10,20,40"),
            ("(c), lambda", "lambda", "1e-2,1e-3,1e-4,1e-5,1e-6"),
        ):
            yield (
                f"{graph}, Figure 2{figure}",
                "figure2",
                f"dans sweep {source} --param {param} --values {values} {grid}_sweep_{param}",
            )
    yield (
        "FB15k-237, ComplEx",
        "rest",
        "dans compare --recipe fb15k-237 --samplers uniform,popularity,self-adv,mcns,nscaching,"
        f"dans --decoders complex --seeds 3 --jobs 1 {PLACE} --out {GRIDS}/fb15k-237_complex",
    )
    for name, graph, folder in GRAPHS:
        yield (
            f"{graph}, 1-vs-all, DistMult",
            "rest",
            f"dans compare --recipe {name} --samplers all-entities --decoders distmult --seeds 3 "
            f"--jobs 1 {PLACE} --out {GRIDS}/{folder}_table",
        )


def commands(part: str) -> str:
    """The commands of the plan's grids in block ``part`` (umls-table, table, figure2 or rest),
    in the order they run, as a Markdown code block."""
    lines = [grid.command for grid in plan() if grid.part == part]
    if not lines:
        raise ValueError(f"no planned grid is in part {part!r}")
    return "```\n" + "\n".join(lines) + "\n```\n"


@dataclass(frozen=True)
class Status:
    """Where one planned run stands: ``done`` (its folder's results hold it), ``copy`` (a run
    of the same settings, ``source`` (folder, run name), is done or trains earlier in the plan)
    or ``train``; the name of its timing (:func:`cost_name`); a done run's results row."""

    grid: PlannedGrid
    run: GridRun
    state: str
    cost: str
    source: tuple[str, str] | None = None
    row: GridRow | None = None  # a done run's results


def settings(config: TrainConfig) -> str:
    """What makes two runs the same training: every setting but where it runs."""
    values = config.to_dict()
    return json.dumps({k: v for k, v in values.items() if k not in PLACEMENT_KEYS}, sort_keys=True)


def cost_name(config: TrainConfig, base: TrainConfig) -> str:
    """A configuration's timing name: its dataset, decoder and sampler, and each other setting
    in which it differs from ``base``. The seed is left out: it changes no cost."""
    left_out = {"seed", "sampler", "decoder", *PLACEMENT_KEYS}
    before = base.to_dict()
    changed = [
        f"{key}={value}"
        for key, value in sorted(config.to_dict().items())
        if before[key] != value and key not in left_out
    ]
    return " ".join([config.data.dataset, config.model.decoder, config.training.sampler, *changed])


def statuses(grids: list[PlannedGrid], results: Path = RESULTS) -> list[Status]:
    """Each run of ``grids`` with where it stands against the result folders under ``results``."""
    ended: dict[str, dict[tuple[tuple[tuple[str, str], ...], int], GridRow]] = {}
    for folder in {grid.folder for grid in grids}:
        path = results / folder / RESULTS_FILE
        rows = read_rows(path) if path.exists() else []
        ended[folder] = {(tuple(sorted(row.key.items())), row.seed): row for row in rows}

    def ended_row(grid: PlannedGrid, run: GridRun) -> GridRow | None:
        return ended[grid.folder].get((tuple(sorted(run.key.items())), run.config.runtime.seed))

    sources: dict[str, tuple[str, str]] = {}
    for grid in grids:
        for run in grid.grid.runs:
            kept = results / grid.folder / RUNS_FOLDER / run.name
            if ended_row(grid, run) is not None and _ended(kept):
                sources.setdefault(settings(run.config), (grid.folder, run.name))
    found = []
    for grid in grids:
        for run in grid.grid.runs:
            key, cost = settings(run.config), cost_name(run.config, grid.base)
            row = ended_row(grid, run)
            if row is not None:
                found.append(Status(grid, run, "done", cost, row=row))
            elif key in sources:
                found.append(Status(grid, run, "copy", cost, sources[key]))
            else:
                found.append(Status(grid, run, "train", cost))
                sources[key] = (grid.folder, run.name)
    return found


def ranking_name(config: TrainConfig) -> str:
    """The timing name of a configuration's rankings: its dataset and decoder."""
    return f"{config.data.dataset} {config.model.decoder}"


def run_seconds(status: Status, timings: dict) -> float:
    """A run's estimated seconds: its epochs, validations and test at the measured pace."""
    config = status.run.config
    epochs = config.training.pretrain_epochs + config.training.epochs
    ranking = timings["ranking"][ranking_name(config)]
    validations = math.ceil(epochs / config.evaluation.eval_every)
    return timings["epoch"][status.cost] * epochs + ranking["valid"] * validations + ranking["test"]


def to_train(found: list[Status]) -> list[Status]:
    """One run per timing name among the runs to train, in plan order."""
    first: dict[str, Status] = {}
    for status in found:
        if status.state == "train":
            first.setdefault(status.cost, status)
    return list(first.values())


def measure(found: list[Status], timings: dict, save: Path) -> None:
    """Time each configuration still to train that ``timings`` lacks (one untrained epoch after
    a warm-up step, and its graph and decoder's rankings), saving ``timings`` to ``save`` after
    each."""
    device = torch.device("cpu")
    graphs: dict[str, KnowledgeGraph] = {}  # read once per dataset
    for status in to_train(found):
        config, ranking = status.run.config, ranking_name(status.run.config)
        if status.cost in timings["epoch"] and ranking in timings["ranking"]:
            continue
        if config.data.dataset not in graphs:
            graphs[config.data.dataset] = load_graph(config)
        kg = graphs[config.data.dataset]
        trainer = build_trainer(config, kg, device)
        if status.cost not in timings["epoch"]:
            trainer.step(trainer.train_triples[: config.training.batch_size], trainer.sampler)
            start = time.perf_counter()
            trainer.train_epoch(trainer.sampler)
            timings["epoch"][status.cost] = time.perf_counter() - start
            print(f"{status.cost}: epoch {timings['epoch'][status.cost]:.1f} s", flush=True)
        if ranking not in timings["ranking"]:
            timings["ranking"][ranking] = {
                split: evaluate(trainer.model, kg, split, **config.ranking()).seconds
                for split in ("valid", "test")
            }
            print(f"{ranking}: ranking {timings['ranking'][ranking]}", flush=True)
        write_atomic(save, (json.dumps(timings, indent=1, sort_keys=True) + "\n").encode())


def table(found: list[Status], timings: dict) -> str:
    """The table the large-graphs page renders: a row per grid (runs, done, copied, to train,
    hours) and their total, then a row per configuration still to train with its timings."""
    lines = [
        "Runs of the paper's grids: done (in the grid's results), copied (the same "
        "settings as a run done in another grid, or trained earlier in this list) and still to "
        "train, with the hours those would take one after another on one core of this 2-core "
        "CPU: each configuration's epoch, validation and test timed once on one thread, "
        "untrained, while a grid's run trained on the other core (`python "
        f"benchmarks/pending.py --measure`, torch {timings['torch']}), times its epochs and "
        "validations. Beside each, the hours of its runs finished here, on one core as well.",
        "",
        "| grid | results | runs | done | copied | to train | hours |",
        "|---|---|---|---|---|---|---|",
    ]
    total_runs, total_hours = 0, 0.0
    for grid, these in _by_grid(found):
        count = {state: sum(s.state == state for s in these) for state in ("done", "copy", "train")}
        hours = sum(run_seconds(s, timings) for s in these if s.state == "train") / 3600
        total_runs, total_hours = total_runs + count["train"], total_hours + hours
        lines.append(
            f"| {grid.title} | `{grid.folder}` | {len(these)} | {count['done']} "
            f"| {count['copy']} | {count['train']} | {hours:.1f} |"
        )
    lines += [
        f"| **all** | | | | | **{total_runs}** | **{total_hours:.1f}** |",
        "",
        "| configuration still to train | s/epoch | epochs | s/validation | s/test | h/run "
        "| h/run finished here |",
        "|---|---|---|---|---|---|---|",
    ]
    finished = finished_hours(found)
    for status in to_train(found):
        config = status.run.config
        ranking = timings["ranking"][ranking_name(config)]
        lines.append(
            f"| {status.cost} | {timings['epoch'][status.cost]:.1f} "
            f"| {config.training.pretrain_epochs + config.training.epochs} "
            f"| {ranking['valid']:.1f} | {ranking['test']:.1f} "
            f"| {run_seconds(status, timings) / 3600:.2f} | {finished.get(status.cost, '–')} |"
        )
    return "\n".join(lines) + "\n"


def finished_hours(found: list[Status]) -> dict[str, str]:
    """For each timing name with runs finished on a CPU, their hours (training and
    evaluation), each, as text: what the estimate of its runs still to train is checked
    against."""
    hours: dict[str, list[float]] = {}
    for status in found:
        row = status.row
        if row is not None and row.finished and row.device == "cpu":
            seconds = (row.train_seconds or 0.0) + (row.eval_seconds or 0.0)
            hours.setdefault(status.cost, []).append(seconds / 3600)
    return {cost: ", ".join(f"{h:.2f}" for h in these) for cost, these in hours.items()}


def _by_grid(found: list[Status]) -> Iterator[tuple[PlannedGrid, list[Status]]]:
    """The statuses of each grid, in plan order."""
    grouped: dict[str, list[Status]] = {}
    for status in found:
        grouped.setdefault(status.grid.title, []).append(status)
    for these in grouped.values():
        yield these[0].grid, these


def restore(found: list[Status], into: Path, results: Path = RESULTS) -> int:
    """Copy into ``into/FOLDER/runs`` each done run's record and each copied run's (from
    ``results`` or, for a run trained earlier in the plan, from its grid under ``into``),
    leaving any record already there; returns how many were written."""
    written = 0
    for status in found:
        target = into / status.grid.folder / RUNS_FOLDER / status.run.name
        if status.state == "train" or target.exists():
            continue
        folder, name = status.source or (status.grid.folder, status.run.name)
        candidates = (results / folder / RUNS_FOLDER / name, into / folder / RUNS_FOLDER / name)
        source = next((c for c in candidates if _ended(c)), None)
        if source is not None:
            copy_record(source, target)
            written += 1
    return written


def run_plan(grids: list[PlannedGrid], into: Path, results: Path = RESULTS) -> None:
    """Train every grid of ``grids`` in order, each with ``--out into/FOLDER``: before each,
    :func:`restore` the records it can copy (from ``results`` and from the grids before it), so
    it trains only the others. A grid whose every run is done is left out: its results hold
    them, though not every kept folder has their records for a command to find. Stops at the
    first command that fails, with its exit status."""
    for planned in grids:
        found = statuses(grids, results)
        if all(status.state == "done" for status in found if status.grid is planned):
            continue
        restore(found, into, results)
        argv = shlex.split(planned.command)[1:]
        out = argv.index("--out") + 1
        argv[out] = str(into / planned.folder)
        status = cli.main(argv)
        if status:
            raise SystemExit(status)


def collect(grids: list[PlannedGrid], parent: Path, results: Path = RESULTS) -> list[str]:
    """Copy each ablation's and sweep's results from its grid under ``parent`` into its folder
    under ``results``: results.csv, table.md and the records of its runs that ended. The
    comparisons' results are joined to their tables by paper_tables.py instead. Returns the
    folders written."""
    written = []
    for planned in grids:
        grid, source = planned.grid, parent / planned.folder
        if grid.key_columns == KEY_COLUMNS or not (source / RESULTS_FILE).exists():
            continue
        target = results / planned.folder
        target.mkdir(parents=True, exist_ok=True)
        for file in (RESULTS_FILE, TABLE_FILE):
            write_atomic(target / file, (source / file).read_bytes())
        for run in grid.runs:
            if _ended(source / RUNS_FOLDER / run.name):
                copy_record(source / RUNS_FOLDER / run.name, target / RUNS_FOLDER / run.name)
        written.append(planned.folder)
    return written


def _ended(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that finished or diverged."""
    return (run_dir / METRICS_FILE).exists() or (run_dir / DIVERGED_FILE).exists()


def current_table(results: Path = RESULTS, timings: Path = TIMINGS) -> str:
    """:func:`table` of the plan against the result folders under ``results``, with the timings
    in ``timings``."""
    return table(statuses(plan(), results), json.loads(timings.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="time what the timings lack")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing")
    parser.add_argument("--restore-into", type=Path, help="a folder of grids to prepare")
    parser.add_argument(
        "--run", type=Path, help="a folder of grids in which to train the whole plan, in order"
    )
    parser.add_argument(
        "--collect", type=Path, help="a folder of grids whose ablations and sweeps to keep"
    )
    parser.add_argument("--timings", type=Path, default=TIMINGS, help="the timings' JSON file")
    args = parser.parse_args()
    # Train and time as the `dans` command does: without it, glibc maps and faults in every
    # large tensor of every step afresh, and a large graph's recipe step takes 18% to 38% longer.
    reuse_freed_memory()
    if args.restore_into:
        written = restore(statuses(plan()), args.restore_into)
        print(f"{written} run records copied into {args.restore_into}")
        return
    if args.run:
        run_plan(plan(), args.run)
        return
    if args.collect:
        for folder in collect(plan(), args.collect):
            print(f"{args.collect / folder} -> {RESULTS / folder}")
        return
    if args.measure:
        torch.set_num_threads(args.threads)
        empty = {"epoch": {}, "ranking": {}}
        timings = json.loads(args.timings.read_text()) if args.timings.exists() else empty
        timings["torch"] = torch.__version__
        args.timings.parent.mkdir(parents=True, exist_ok=True)
        measure(statuses(plan()), timings, args.timings)
    print(current_table(timings=args.timings))


if __name__ == "__main__":
    main()
