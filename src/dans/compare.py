"""``dans compare``: a grid of samplers x decoders x seeds on one dataset, resumable, summarised
as the paper's Tables 2 and 3 with a paired test of each sampler against uniform."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import statistics
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from scipy import stats

from dans.builders import check_names
from dans.config import TrainConfig
from dans.errors import DansError, TrainingDiverged
from dans.evaluation.metrics import METRIC_NAMES
from dans.pipeline import train
from dans.rundir import CONFIG_FILE, METRICS_FILE, write_atomic

RESULTS_FILE, TABLE_FILE, DIVERGED_FILE = "results.csv", "table.md", "diverged.txt"
# The paper's table columns, each higher-is-better.
TABLE_METRICS = (("mrr", "MRR"), ("hits@1", "H@1"), ("ndcg@5", "NDCG@5"))
RESULT_COLUMNS = (
    "dataset",
    "sampler",
    "decoder",
    "seed",
    "status",
    *METRIC_NAMES,
    "valid_mrr",
    "epochs",
    "best_epoch",
    "train_seconds",
    "eval_seconds",
)
BASELINE = "uniform"
# The config keys the grid sets for each run.
GRID_KEYS = ("sampler", "decoder", "seed")
DECODER_TITLES = {"distmult": "DistMult", "complex": "ComplEx", "rotate": "RotatE"}


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    sampler: str
    decoder: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.sampler}-{self.decoder}-seed{self.seed}"


def grid(samplers: Sequence[str], decoders: Sequence[str], seeds: int) -> list[Cell]:
    """Every (sampler, decoder, seed) with seeds 1..``seeds``, decoders outermost."""
    return [
        Cell(sampler, decoder, seed)
        for decoder in decoders
        for sampler in samplers
        for seed in range(1, seeds + 1)
    ]


def compare(
    config: TrainConfig,
    samplers: Sequence[str],
    decoders: Sequence[str],
    seeds: int,
    out: Path,
    progress: bool = True,
    report: Callable[[str], None] = print,
    jobs: int = 1,
) -> list[dict[str, str]]:
    """Train every cell not finished before into ``out/runs/<cell>``, then write ``results.csv``
    and ``table.md``; returns the result rows.

    A cell is finished when its run directory holds metrics (or a record that it diverged) from
    the same configuration; a run directory left by another configuration is refused rather than
    reused. Results are rewritten after every run, so an interrupted grid keeps what it did.
    With ``jobs`` > 1, that many runs train at once, each in its own process with an equal share
    of this process's threads and no progress bar.
    """
    if seeds < 1:
        raise DansError(f"--seeds must be at least 1, got {seeds}")
    if jobs < 1:
        raise DansError(f"--jobs must be at least 1, got {jobs}")
    cells = grid(samplers, decoders, seeds)
    configs = {cell: _cell_config(config, cell) for cell in cells}
    for cell_config in configs.values():
        cell_config.validate()
        check_names(cell_config)
    out.mkdir(parents=True, exist_ok=True)
    prefixes = {
        cell: f"[{number}/{len(cells)}] {cell.sampler} + {cell.decoder}, seed {cell.seed}"
        for number, cell in enumerate(cells, 1)
    }
    pending = {}
    for cell in cells:
        run_dir = out / "runs" / cell.name
        if _finished(run_dir, configs[cell]):
            report(f"{prefixes[cell]}: done before")
        else:
            pending[cell] = (configs[cell], run_dir)
    for cell, summary in _train_cells(pending, progress, jobs):
        report(f"{prefixes[cell]}: {summary}")
        _write_summaries(out, cells)
    return _write_summaries(out, cells)


def _train_cells(
    runs: dict[Cell, tuple[TrainConfig, Path]], progress: bool, jobs: int
) -> Iterator[tuple[Cell, str]]:
    """Train each cell's config into its run directory, ``jobs`` at a time; yields each cell with
    its summary as it finishes."""
    if jobs == 1 or len(runs) <= 1:
        for cell, (config, run_dir) in runs.items():
            yield cell, _run_cell(config, run_dir, progress)
        return
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(runs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(max(1, torch.get_num_threads() // jobs),),
    ) as pool:
        futures = {
            pool.submit(_run_cell, config, run_dir, False): cell
            for cell, (config, run_dir) in runs.items()
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            # A failed run stops the grid: runs not started are dropped, runs under way finish
            # and are kept for the next call.
            pool.shutdown(cancel_futures=True)
            raise


def _run_cell(config: TrainConfig, run_dir: Path, progress: bool) -> str:
    """Train one cell into ``run_dir`` (a divergence is recorded there); returns its summary."""
    try:
        run = train(config, out=run_dir, overwrite=True, progress=progress)
    except TrainingDiverged as exc:
        write_atomic(run_dir / DIVERGED_FILE, f"{exc}\n".encode())
        return f"diverged ({exc})"
    metrics = run.metrics or {}
    return f"test MRR {metrics['test']['mrr']:.4f} ({metrics['train_seconds']:.0f} s of training)"


def _write_summaries(out: Path, cells: Sequence[Cell]) -> list[dict[str, str]]:
    """Rewrite ``results.csv`` and ``table.md`` from the finished cells; returns their rows."""
    rows = _rows(out, cells)
    write_atomic(out / RESULTS_FILE, render_csv(rows).encode())
    write_atomic(out / TABLE_FILE, render_table(rows).encode())
    return rows


def _cell_config(config: TrainConfig, cell: Cell) -> TrainConfig:
    return dataclasses.replace(config, sampler=cell.sampler, decoder=cell.decoder, seed=cell.seed)


def _finished(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a finished run of ``config``; refuses one of another config."""
    done = (run_dir / METRICS_FILE).exists() or (run_dir / DIVERGED_FILE).exists()
    if not done:
        return False
    stored = TrainConfig.from_toml(run_dir / CONFIG_FILE)
    if stored != config:
        changed = sorted(
            key for key, value in config.to_dict().items() if stored.to_dict()[key] != value
        )
        raise DansError(
            f"{run_dir}: a finished run with other settings ({', '.join(changed)}); "
            "compare into a new --out directory"
        )
    return True


def _rows(out: Path, cells: Sequence[Cell]) -> list[dict[str, str]]:
    """One row per finished cell, in grid order."""
    rows = []
    for cell in cells:
        run_dir = out / "runs" / cell.name
        row = {"sampler": cell.sampler, "decoder": cell.decoder, "seed": str(cell.seed)}
        if (run_dir / METRICS_FILE).exists():
            metrics = json.loads((run_dir / METRICS_FILE).read_text())
            row.update(
                dataset=metrics["dataset"],
                status="ok",
                **{key: repr(metrics["test"][key]) for key in METRIC_NAMES},
                valid_mrr=repr(metrics["valid"]["mrr"]),
                epochs=str(metrics["epochs"]),
                best_epoch=str(metrics["best_epoch"]),
                train_seconds=f"{metrics['train_seconds']:.1f}",
                eval_seconds=f"{metrics['eval_seconds']:.1f}",
            )
        elif (run_dir / DIVERGED_FILE).exists():
            row.update(status="diverged")
        else:
            continue
        rows.append({column: row.get(column, "") for column in RESULT_COLUMNS})
    return rows


def render_csv(rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def paired_p_value(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``values`` against ``baseline`` (matched by seed);
    NaN with fewer than two pairs or when every difference is the same."""
    differences = [a - b for a, b in zip(values, baseline, strict=True)]
    if len(differences) < 2 or max(differences) == min(differences):
        return math.nan
    return float(stats.ttest_rel(values, baseline).pvalue)


def render_table(rows: Sequence[dict[str, str]]) -> str:
    """The paper's layout: a block of samplers per decoder; MRR, H@1 and NDCG@5 as mean ± std
    over seeds, the best of each column in bold and the runner-up underlined; a paired t-test of
    each sampler's MRR against uniform over the seeds both ran."""
    ok = [row for row in rows if row["status"] == "ok"]
    dataset = ok[0]["dataset"] if ok else ""
    lines = [
        f"Test metrics on {dataset}, mean ± std over seeds (filtered, realistic ranks). "
        f"p: two-sided paired t-test of MRR against {BASELINE} over seeds.",
        "",
        "| sampler | seeds | " + " | ".join(title for _, title in TABLE_METRICS) + " | p |",
        "|---" * (len(TABLE_METRICS) + 3) + "|",
    ]
    decoders = list(dict.fromkeys(row["decoder"] for row in rows))
    for decoder in decoders:
        block = [row for row in ok if row["decoder"] == decoder]
        samplers = list(dict.fromkeys(row["sampler"] for row in rows if row["decoder"] == decoder))
        by_sampler = {s: {int(r["seed"]): r for r in block if r["sampler"] == s} for s in samplers}
        means = {
            key: {
                s: statistics.fmean(float(r[key]) for r in runs.values())
                for s, runs in by_sampler.items()
                if runs
            }
            for key, _ in TABLE_METRICS
        }
        lines.append(
            f"| **{DECODER_TITLES.get(decoder, decoder)}** |" + " |" * (len(TABLE_METRICS) + 2)
        )
        for sampler in samplers:
            runs = by_sampler[sampler]
            diverged = sum(
                1
                for r in rows
                if (r["decoder"], r["sampler"], r["status"]) == (decoder, sampler, "diverged")
            )
            cells = [_styled(key, sampler, runs, means[key]) for key, _ in TABLE_METRICS]
            seeds = f"{len(runs)}" + (f" (+{diverged} diverged)" if diverged else "")
            lines.append(
                f"| {sampler} | {seeds} | "
                + " | ".join(cells)
                + f" | {_p(sampler, runs, by_sampler)} |"
            )
    return "\n".join(lines) + "\n"


def _styled(
    key: str, sampler: str, runs: dict[int, dict[str, str]], means: dict[str, float]
) -> str:
    if not runs:
        return "–"
    values = [float(r[key]) for r in runs.values()]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    text = f"{_three(statistics.fmean(values))} ± {_three(spread)}"
    ranking = sorted(set(means.values()), reverse=True)
    if means[sampler] == ranking[0]:
        return f"**{text}**"
    if len(ranking) > 1 and means[sampler] == ranking[1]:
        return f"<u>{text}</u>"
    return text


def _p(
    sampler: str,
    runs: dict[int, dict[str, str]],
    by_sampler: dict[str, dict[int, dict[str, str]]],
) -> str:
    baseline = by_sampler.get(BASELINE, {})
    if sampler == BASELINE or not baseline:
        return ""
    seeds = sorted(runs.keys() & baseline.keys())
    p = paired_p_value(
        [float(runs[s]["mrr"]) for s in seeds], [float(baseline[s]["mrr"]) for s in seeds]
    )
    if math.isnan(p):
        return "–"
    return "<.001" if p < 0.001 else _three(p)


def _three(value: float) -> str:
    """``.724``: three decimals without the leading zero, as the paper prints them."""
    return f"{value:.3f}".replace("0.", ".", 1) if 0 <= value < 1 else f"{value:.3f}"
