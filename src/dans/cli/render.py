"""The text the commands print: tables and summaries built from results, kept apart from the
handlers that compute them."""

from __future__ import annotations

import json
from dataclasses import astuple
from pathlib import Path
from typing import Any

from dans.data.datasets import DATASETS, locate
from dans.evaluation.metrics import METRIC_NAMES, Evaluation
from dans.experiments.diversity import DIVERSITY_COLUMNS
from dans.experiments.grids import LATEX_TABLE_FILE, TABLE_FILE
from dans.experiments.results import RESULTS_FILE, read_csv
from dans.prediction import Prediction
from dans.recipes import describe, recipe, recipe_names
from dans.rundir import RunMetrics


def protocol_title(title: str, result: Evaluation) -> str:
    """``title``, and the sampled protocol where the ranks were sampled."""
    return f"{title} [{result.protocol}]" if result.candidates else title


def metrics_table(result: Evaluation, title: str) -> str:
    """Every metric over both sides, then over the head and the tail queries."""
    lines = [
        protocol_title(title, result),
        f"{'':8}" + "".join(f"{key:>10}" for key in METRIC_NAMES),
    ]
    for label, metrics in (("both", result.both), ("head", result.head), ("tail", result.tail)):
        lines.append(f"{label:8}" + "".join(f"{value:>10.4f}" for value in astuple(metrics)))
    return "\n".join(lines)


def relations_table(found: dict[str, Evaluation], title: str) -> str:
    """One row per relation: its queries (two per triple), then every metric over both sides."""
    width = max([len("relation"), *(len(name) for name in found)])
    first = next(iter(found.values()), None)
    lines = [
        title if first is None else protocol_title(title, first),
        f"{'relation':{width}}{'queries':>9}" + "".join(f"{key:>10}" for key in METRIC_NAMES),
    ]
    for name, result in found.items():
        values = "".join(f"{value:>10.4f}" for value in astuple(result.both))
        lines.append(f"{name:{width}}{result.queries:>9}" + values)
    return "\n".join(lines)


def training_summary(metrics: RunMetrics) -> str:
    """One line: what was trained, how long it took, its peak memory where known, and where
    validation peaked."""
    memory = "" if metrics.peak_memory_mb is None else f", peak {metrics.peak_memory_mb:.0f} MiB"
    return (
        f"{metrics.dataset}: {metrics.encoder} + {metrics.decoder}, sampler {metrics.sampler}, "
        f"seed {metrics.seed}; {metrics.epochs} epochs in {metrics.train_seconds:.1f} s "
        f"({metrics.seconds_per_epoch:.3f} s/epoch{memory}), best valid MRR "
        f"{metrics.valid.mrr:.4f} at epoch {metrics.best_epoch}"
        + (f" [{metrics.valid.protocol}]" if metrics.valid.candidates else "")
        + budget_use(metrics)
    )


def budget_use(metrics: RunMetrics) -> str:
    """How a run with a time budget spent it (training, validation, writing its files), as the
    end of :func:`training_summary`'s line; nothing for a run of --epochs."""
    if metrics.time_budget_seconds is None or metrics.elapsed_seconds is None:
        return ""
    validation = metrics.eval_seconds - metrics.test.seconds
    writing = metrics.elapsed_seconds - metrics.train_seconds - validation
    return (
        f"; of the {metrics.time_budget_seconds:.0f} s budget, {metrics.elapsed_seconds:.1f} s "
        f"spent: {metrics.train_seconds:.1f} s training, {validation:.1f} s validating, "
        f"{writing:.1f} s writing the run"
    )


def negatives_table(rows: list[dict[str, Any]]) -> str:
    """Ranked negatives: entity, score, distance of the snap, and the pathways that made it."""
    width = max([len("entity"), *(len(row["entity"]) for row in rows)])
    lines = [f"{'rank':>4}  {'entity':{width}}  {'score':>9}  {'distance':>9}  pathways"]
    for rank, row in enumerate(rows, 1):
        lines.append(
            f"{rank:>4}  {row['entity']:{width}}  {row['score']:>9.4f}  {row['distance']:>9.4f}  "
            f"{row['pathways']}"
        )
    return "\n".join(lines)


def predictions_table(prediction: Prediction) -> str:
    """A query, then its entities ranked with their logits."""
    width = max([len("entity"), *(len(name) for name in prediction.entities)])
    lines = [str(prediction.query), f"{'rank':>4}  {'entity':{width}}  {'score':>9}"]
    for rank, name, score in prediction.ranked():
        lines.append(f"{rank:>4}  {name:{width}}  {score:>9.4f}")
    return "\n".join(lines)


def rows_tsv(rows: list[dict[str, Any]]) -> str:
    """Rows of one shape as tab-separated text under a header of their keys; floats to six
    significant digits."""
    if not rows:
        return ""
    lines = ["\t".join(rows[0])]
    for row in rows:
        lines.append(
            "\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values())
        )
    return "\n".join(lines) + "\n"


def prediction_rows(found: list[Prediction]) -> list[dict[str, Any]]:
    """One row per (query, answer): the query's head, relation and tail, rank, entity, logit."""
    return [
        {
            "head": prediction.query.head,
            "relation": prediction.query.relation,
            "tail": prediction.query.tail,
            "rank": rank,
            "entity": name,
            "score": score,
        }
        for prediction in found
        for rank, name, score in prediction.ranked()
    ]


def evaluation_rows(result: Evaluation) -> list[dict[str, Any]]:
    """One row per side (both, head, tail) and its metrics."""
    sides = (("both", result.both), ("head", result.head), ("tail", result.tail))
    return [{"side": side, **metrics.to_dict()} for side, metrics in sides]


def relation_rows(found: dict[str, Evaluation]) -> list[dict[str, Any]]:
    """One row per relation: its queries, then its metrics over both sides."""
    return [
        {"relation": name, "queries": result.queries, **result.both.to_dict()}
        for name, result in found.items()
    ]


def grid_summary(out: Path, runs: int, chart: str = "", table_format: str = "markdown") -> str:
    """A grid's table as written (markdown or LaTeX), how many runs it holds, and its chart when
    there is one; or, as JSON, the rows of its results."""
    if table_format == "json":
        return json.dumps(read_csv(out / RESULTS_FILE), indent=2)
    lines = [f"{runs} runs in {out / RESULTS_FILE}"]
    if chart and (out / chart).exists():
        lines.append(f"chart: {out / chart}")
    table = LATEX_TABLE_FILE if table_format == "latex" else TABLE_FILE
    return (out / table).read_text() + "\n".join(lines)


def diversity_lines(found: dict[str, Any]) -> str:
    """Each diversity measure on its line; a measure that does not apply shows a dash."""
    return "\n".join(
        f"{key:24}{'–' if found[key] is None else f'{found[key]:.4f}'}" for key in DIVERSITY_COLUMNS
    )


def datasets_table() -> str:
    """The named datasets with their sizes and where they are, then the recipes."""
    lines = [
        f"{'name':12}{'entities':>10}{'relations':>10}{'train':>11}{'valid':>8}{'test':>8}  where"
    ]
    for info in DATASETS.values():
        folder = locate(info.name)
        where = str(folder) if folder else f"not here ({'downloadable' if info.url else info.note})"
        lines.append(
            f"{info.name:12}{info.entities:>10,}{info.relations:>10,}{info.train:>11,}"
            f"{info.valid:>8,}{info.test:>8,}  {where}"
        )
    names = recipe_names()
    wide = max(len(name) for name in ["recipe", *names]) + 2
    lines += ["", f"{'recipe':{wide}}{'dataset':12}  use with `dans train --recipe NAME`"]
    lines += [f"{name:{wide}}{recipe(name).data.dataset:12}  {describe(name)}" for name in names]
    return "\n".join(lines)
