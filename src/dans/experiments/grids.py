"""Resumable grids of training runs, shared by ``dans compare``, ``ablate`` and ``sweep``.

Each run trains into its own directory ``out/runs/<name>``. A run whose directory holds its
metrics and diversity (or a record that it diverged) is not redone; one that was killed resumes
from its last saved state; one left by another configuration is refused rather than reused or
replaced. Several runs can train at once, each in its own process, and several grid processes
can share one folder: each run is claimed before it trains (:mod:`dans.experiments.claims`).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from dans.allocator import reuse_freed_memory
from dans.builders import check_names
from dans.config import TrainConfig
from dans.errors import DansError, TrainingDiverged
from dans.evaluation.metrics import METRIC_NAMES
from dans.experiments.claims import CLAIMS_FOLDER, LEASE_SECONDS, Claims, locked
from dans.experiments.diversity import DIVERSITY_COLUMNS, DIVERSITY_POSITIVES, measure_diversity
from dans.experiments.results import RESULTS_FILE, GridRow, result_columns, results_csv
from dans.experiments.tables import latex_table
from dans.files import make_folder, write_atomic
from dans.folders import Kind, claim_folder, writing
from dans.pipeline import CHECKPOINT_EVERY, run_training
from dans.rundir import CONFIG_FILE, DIVERGED_FILE, DIVERSITY_FILE, METRICS_FILE
from dans.tracking import NO_TRACKERS, TrackerSpec

TABLE_FILE, RUNS_FOLDER = "table.md", "runs"
LATEX_TABLE_FILE = "table.tex"
# How often a grid's worker process looks whether the grid process is still there.
PARENT_CHECK_SECONDS = 1.0
# The settings that say where a run trains rather than what it trains.
PLACEMENT_KEYS = frozenset({"device"})


@dataclass(frozen=True)
class GridOptions:
    """How a grid runs, none of which changes a result: progress bars, where each run's line
    goes, runs trained at once, how often each run saves its state (epochs or a duration), the
    lease of a claim on a run (see :mod:`dans.experiments.claims`), the trackers each run logs
    to, and whether each finished run's negatives are measured (``diversity.json`` and
    results.csv's diversity columns)."""

    progress: bool = True
    report: Callable[[str], None] = print
    jobs: int = 1
    checkpoint_every: int | str = CHECKPOINT_EVERY
    lease_seconds: float = LEASE_SECONDS
    trackers: TrackerSpec = NO_TRACKERS
    diversity: bool = False


DEFAULT_OPTIONS = GridOptions()


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: its directory name under ``out/runs``, how progress lines call it, its
    full configuration, and the results.csv columns (besides ``seed``) that tell it apart."""

    name: str
    label: str
    config: TrainConfig
    key: dict[str, str]


@dataclass(frozen=True)
class Grid:
    """A resumable grid: its runs, the results.csv columns that tell them apart (each run's
    :attr:`GridRun.key`, before ``seed``), and what it writes from the result rows besides
    results.csv (a table, a chart), given the rows and the grid's folder."""

    runs: Sequence[GridRun]
    key_columns: tuple[str, ...]
    summarize: Callable[[list[GridRow], Path], None]

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of results.csv."""
        return result_columns(self.key_columns)

    def run(self, out: Path, options: GridOptions = DEFAULT_OPTIONS) -> list[GridRow]:
        """Train every run not finished before into ``out/runs/<name>``, as ``options`` say;
        returns the result rows.

        After each run, and once at the end, ``out/results.csv`` is rewritten and the grid's
        summary is written from its rows, so both stay current when the grid is interrupted.
        Every configuration is checked before anything is written or trained. Other processes
        may work on the same ``out``: a run one of them holds is left to it and waited for.
        """
        runs = self.runs
        if options.jobs < 1:
            raise DansError(f"--jobs must be at least 1, got {options.jobs}")
        for run in runs:
            run.config.validate()
            check_names(run.config)
        make_folder(out)
        # A grid written before folders had markers is known by its claims or runs.
        adopt = (out / CLAIMS_FOLDER).is_dir() or (out / RUNS_FOLDER).is_dir()
        claim_folder(out, Kind.GRID, adopt=adopt)
        claims = Claims(out, options.lease_seconds)
        try:
            return self._run_claimed(out, options, claims)
        finally:
            claims.close()

    def _run_claimed(self, out: Path, options: GridOptions, claims: Claims) -> list[GridRow]:
        """:meth:`run` once this process can claim runs in ``out``."""
        runs = self.runs
        pending, seconds_before = [], []
        for number, run in enumerate(runs, 1):
            if finished(run_directory(out, run), run.config, options.diversity):
                options.report(f"{_prefix(number, runs)}: done before")
                result = outcome(run_directory(out, run), run)
                if result is not None and result.finished:
                    seconds_before.append(result.train_seconds + result.eval_seconds)
            else:
                pending.append(number)
        options.report(_plan(len(runs), len(pending), options.jobs, seconds_before))
        start = time.monotonic()
        with tqdm(total=len(pending), unit="run", desc="grid", disable=not options.progress) as bar:
            trained = _train(runs, pending, out, options, claims)
            for done, (number, summary) in enumerate(trained, 1):
                left = _time_left(time.monotonic() - start, done, len(pending) - done)
                with tqdm.external_write_mode():
                    options.report(f"{_prefix(number, runs)}: {summary}{left}")
                with locked(out):
                    self.summarize(write_results(out, runs, self.columns), out)
                bar.update()
        with locked(out):
            rows = write_results(out, runs, self.columns)
            self.summarize(rows, out)
        return rows


def write_table(out: Path, markdown: str) -> None:
    """A grid's summary table as ``table.md`` and, the same, as LaTeX in ``table.tex``."""
    write_atomic(out / TABLE_FILE, markdown.encode())
    write_atomic(out / LATEX_TABLE_FILE, latex_table(markdown).encode())


# A grid's seeds: a count N (seeds 1..N) or the seeds themselves.
Seeds = int | Sequence[int]


def seed_list(seeds: Seeds) -> list[int]:
    """The seeds of a grid: 1..``seeds`` for a count, else ``seeds`` as given (distinct)."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise DansError(f"--seeds must be at least 1, got {seeds}")
        return list(range(1, seeds + 1))
    if not seeds or len(set(seeds)) != len(seeds):
        raise DansError(f"--seeds must name distinct seeds, got {list(seeds)}")
    return list(seeds)


def _plan(total: int, pending: int, jobs: int, seconds_before: list[float]) -> str:
    """What the grid will train, with an estimate of how long when runs finished before (their
    mean time, ``jobs`` at a time), or word that one follows each run."""
    plan = f"{pending} of {total} runs to train, {jobs} at a time"
    if pending == total:
        return plan + "; the time left is estimated after each run"
    plan += f" ({total - pending} done before"
    if pending and seconds_before:
        pace = sum(seconds_before) / len(seconds_before)
        plan += f"; about {math.ceil(pace * pending / jobs / 60)} min at their pace"
    return plan + ")"


def _time_left(elapsed: float, done: int, remaining: int) -> str:
    """``; about N min left`` at the pace so far (the grid's wall time per finished run), or
    nothing when no run is left."""
    if not remaining:
        return ""
    return f"; about {math.ceil(elapsed / done * remaining / 60)} min left"


def _prefix(number: int, runs: Sequence[GridRun]) -> str:
    return f"[{number}/{len(runs)}] {runs[number - 1].label}"


def run_directory(out: Path, run: GridRun) -> Path:
    return out / RUNS_FOLDER / run.name


def finished(run_dir: Path, config: TrainConfig, diversity: bool = False) -> bool:
    """Whether ``run_dir`` holds a finished run of ``config`` (its diversity measured, if
    ``diversity``), or one that diverged. A run finished on another device counts (a grid's
    runs can be shared out between a GPU and CPUs); a run of other settings is refused,
    finished or not, and so is an unfinished one of another device, which would resume
    there."""
    if not (run_dir / CONFIG_FILE).exists():
        return False
    measured = (run_dir / METRICS_FILE).exists() and (
        not diversity or (run_dir / DIVERSITY_FILE).exists()
    )
    done = measured or (run_dir / DIVERGED_FILE).exists()
    stored = TrainConfig.from_toml(run_dir / CONFIG_FILE, warn=False).to_dict()
    changed = sorted(
        key
        for key, value in config.to_dict().items()
        if stored[key] != value and not (done and key in PLACEMENT_KEYS)
    )
    if changed:
        raise DansError(
            f"{run_dir}: a run with other settings ({', '.join(changed)}); "
            "use a new --out directory"
        )
    return done


def outcome(run_dir: Path, run: GridRun) -> GridRow | None:
    """The row of ``run`` from its folder ``run_dir`` (its diversity when it was measured);
    None if unfinished."""
    if (run_dir / METRICS_FILE).exists():
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        diversity = (
            json.loads((run_dir / DIVERSITY_FILE).read_text())
            if (run_dir / DIVERSITY_FILE).exists()
            else {}
        )
        return GridRow(
            key=run.key,
            seed=run.config.runtime.seed,
            dataset=metrics["dataset"],
            test={name: metrics["test"][name] for name in METRIC_NAMES},
            valid_mrr=metrics["valid"]["mrr"],
            epochs=metrics["epochs"],
            best_epoch=metrics["best_epoch"],
            train_seconds=metrics["train_seconds"],
            eval_seconds=metrics["eval_seconds"],
            peak_memory_mb=metrics.get("peak_memory_mb"),
            device=metrics["device"],
            diversity={name: diversity[name] for name in DIVERSITY_COLUMNS if name in diversity},
        )
    if (run_dir / DIVERGED_FILE).exists():
        return GridRow(key=run.key, seed=run.config.runtime.seed, status="diverged")
    return None


def write_results(out: Path, runs: Sequence[GridRun], columns: Sequence[str]) -> list[GridRow]:
    """Rewrite ``out/results.csv`` with one row per finished run, in grid order; returns them as
    the file holds them (seconds to a tenth, memory to a MiB).

    ``columns`` are the dataset, each run's key columns and ``seed``, then
    :func:`~dans.experiments.results.result_columns`."""
    found = [row for run in runs if (row := outcome(run_directory(out, run), run)) is not None]
    write_atomic(out / RESULTS_FILE, results_csv(found, columns).encode())
    # Through the cells and back: each value as precise as the file keeps it.
    return [GridRow.from_cells(row.cells()) for row in found]


def _train(
    runs: Sequence[GridRun],
    numbers: Sequence[int],
    out: Path,
    options: GridOptions,
    claims: Claims,
) -> Iterator[tuple[int, str]]:
    """Train the runs numbered ``numbers`` (from 1), ``options.jobs`` at a time, each once this
    process holds its claim; yields each number once, with its run's summary as it finishes or
    with word that another process finished it. A run another process holds is tried again
    until it is finished or its holder's lease lapses and this process takes it over, before
    any later run."""
    jobs, every = options.jobs, options.checkpoint_every
    in_process = jobs == 1 or len(numbers) <= 1
    # One job trains in this process, where each run can show its own progress bar.
    progress = options.progress and in_process
    waiting, deferred = list(numbers), []
    running: dict[Future[str], int] = {}
    with _InProcess() if in_process else _pool(jobs, len(numbers)) as executor:
        try:
            while waiting or deferred or running:
                # Claim the next runs as slots free up, so that another process sharing the
                # grid takes the ones this one has not reached.
                while waiting and len(running) < jobs:
                    number = waiting.pop(0)
                    run = runs[number - 1]
                    state = _claim(run, out, claims, options.diversity)
                    if state == HELD_ELSEWHERE:
                        deferred.append(number)
                    elif state == FINISHED_ELSEWHERE:
                        yield number, "finished by another process"
                    else:
                        future = executor.submit(
                            _train_one,
                            run.config,
                            run_directory(out, run),
                            progress,
                            every,
                            options.trackers,
                            options.diversity,
                        )
                        running[future] = number
                retry = claims.retry_seconds if deferred else None
                if running:
                    done, _ = wait(running, timeout=retry, return_when=FIRST_COMPLETED)
                    for future in done:
                        number = running.pop(future)
                        try:
                            summary = future.result()
                        finally:
                            claims.release(runs[number - 1].name)
                        yield number, summary
                elif deferred:
                    time.sleep(claims.retry_seconds)
                # Deferred runs go back in grid order, so a run whose holder died (a grid killed
                # and restarted within its lease) resumes as soon as its claim lapses.
                waiting, deferred = sorted(waiting + deferred), []
        except BaseException:
            # A failed run stops the grid: runs not started are dropped, runs under way finish
            # and are kept for the next call.
            executor.shutdown(cancel_futures=True)
            raise


def _pool(jobs: int, runs: int) -> ProcessPoolExecutor:
    """Processes for ``jobs`` runs at once, each with an equal share of the threads, and each
    ending when this process does."""
    return ProcessPoolExecutor(
        max_workers=min(jobs, runs),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(max(1, torch.get_num_threads() // jobs), os.getpid()),
    )


def _start_worker(threads: int, parent: int) -> None:
    """Set a worker's threads and its allocator as the ``dans`` command's (see
    :mod:`dans.allocator`), and end it within a second of its grid process: a pool's workers
    outlive a parent that is killed, and would go on writing runs that the next grid process
    takes over once their claims lapse."""
    torch.set_num_threads(threads)
    reuse_freed_memory()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _InProcess(Executor):
    """An executor that runs each call at once, in this process, so that one job at a time
    takes the same path through :func:`_train` as several."""

    def submit(self, fn: Callable[..., str], /, *args: Any, **kwargs: Any) -> Future[str]:
        future: Future[str] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller sees it from future.result(), as from a pool
            future.set_exception(exc)
        return future


# What claiming a run found: this process holds it now, another one does, or another one
# finished it since the grid looked.
HELD_HERE, HELD_ELSEWHERE, FINISHED_ELSEWHERE = "held here", "held elsewhere", "finished"


def _claim(run: GridRun, out: Path, claims: Claims, diversity: bool) -> str:
    """Claim ``run`` for this process; one of :data:`HELD_HERE`, :data:`HELD_ELSEWHERE`,
    :data:`FINISHED_ELSEWHERE`."""
    if not claims.take(run.name):
        return HELD_ELSEWHERE
    if finished(run_directory(out, run), run.config, diversity):
        claims.release(run.name)
        return FINISHED_ELSEWHERE
    return HELD_HERE


def _train_one(
    config: TrainConfig,
    run_dir: Path,
    progress: bool,
    checkpoint_every: int | str,
    trackers: TrackerSpec,
    diversity: bool,
) -> str:
    """Train one run into ``run_dir``, or resume it there (a divergence is recorded there),
    logging it to ``trackers`` under its directory's name, then, if ``diversity``, measure its
    sampler's negatives into ``diversity.json``; returns its summary.

    :func:`finished` has checked that a config.toml already in ``run_dir`` is ``config``.
    """
    make_folder(run_dir)
    # The run's folder is this process's from training to its diversity record.
    with writing(run_dir):
        try:
            resuming = (run_dir / CONFIG_FILE).exists()
            run = run_training(
                None if resuming else config,
                run_dir,
                resume_run=resuming,
                overwrite=True,
                progress=progress,
                checkpoint_every=checkpoint_every,
                trackers=trackers,
            )
        except TrainingDiverged as exc:
            write_atomic(run_dir / DIVERGED_FILE, f"{exc}\n".encode())
            return f"diverged ({exc})"
        if diversity:
            measured = measure_diversity(
                run.model,
                run.sampler,
                run.kg,
                config.runtime.seed,
                DIVERSITY_POSITIVES,
                config.training.batch_size,
            )
            text = json.dumps(measured, indent=2) + "\n"
            write_atomic(run_dir / DIVERSITY_FILE, text.encode())
        return (
            f"test MRR {run.metrics.test.mrr:.4f} ({run.metrics.train_seconds:.0f} s of training)"
        )
