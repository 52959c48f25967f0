"""``dans sweep``: test metrics against one numeric setting over seeds, as the paper's parameter
sensitivity study (Fig. 2(b) for N_s, Fig. 2(c) for the FiLM regulariser lambda)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from dans.config import TrainConfig
from dans.errors import DansError
from dans.experiments import paper
from dans.experiments.grids import (
    DEFAULT_OPTIONS,
    Grid,
    GridOptions,
    GridRun,
    Seeds,
    seed_list,
    write_table,
)
from dans.experiments.plots import line_chart
from dans.experiments.results import GridRow
from dans.experiments.tables import by_seed, dataset_of, metric_series, summary_table
from dans.options import flag_name, value_type

CHART_FILE = "sweep.png"
_NUMERIC = (int, float)


def sweep_key(name: str) -> str:
    """The config key that ``name`` (a key, a flag such as ``--negatives``, or an alias of
    :data:`dans.experiments.paper.SWEEP_ALIASES`) names; refuses settings that are not numeric."""
    key = name.removeprefix("--").replace("-", "_")
    key = paper.SWEEP_ALIASES.get(key, key)
    types = {key: value_type(spec) for key, spec in TrainConfig.specs().items()}
    numeric = sorted(k for k, kind in types.items() if kind in _NUMERIC and k != "seed")
    if key not in numeric:
        raise DansError(
            f"--param: {name!r} is not a numeric setting that can be swept; "
            f"use one of {', '.join(numeric)} (or n_negatives, lambda)"
        )
    return key


def sweep_values(key: str, texts: Sequence[str]) -> list[int | float]:
    """``texts`` read as the type of ``key``, each once."""
    kind = value_type(TrainConfig.specs()[key])
    values: list[int | float] = []
    for text in texts:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DansError(
                f"--values: {text!r} is not {'an int' if kind is int else 'a finite number'}"
            )
        if value in values:
            raise DansError(f"--values: {text!r} is given twice")
        values.append(value)
    return values


def value_label(value: float) -> str:
    """How a value names its runs and rows: exact, so that distinct values never share a run
    directory (``1e-05``, ``0.0001``, ``20``)."""
    return repr(value)


def sweep(
    config: TrainConfig,
    param: str,
    values: Sequence[str],
    seeds: Seeds,
    out: Path,
    options: GridOptions = DEFAULT_OPTIONS,
) -> list[GridRow]:
    """Train ``config`` with ``param`` set to each value for ``seeds`` (a count N: seeds 1..N) into
    ``out/runs``, resuming as ``dans compare`` does; writes ``results.csv``, ``table.md`` and
    ``sweep.png`` and returns the result rows."""
    key = sweep_key(param)
    unused = config.unused(key)
    if unused:
        raise DansError(f"--param {unused}: every value would train the same model")
    runs = [
        GridRun(
            f"{key}={value_label(value)}-seed{seed}",
            f"{flag_name(key)} {value_label(value)}, seed {seed}",
            config.replace(seed=seed, **{key: value}),
            {"param": key, "value": value_label(value)},
        )
        for value in sweep_values(key, values)
        for seed in seed_list(seeds)
    ]
    return Grid(
        runs,
        ("param", "value"),
        lambda rows, folder: _summarize(rows, folder, key, config.training.sampler),
    ).run(out, options)


def _summarize(rows: list[GridRow], out: Path, key: str, sampler: str) -> None:
    """The sweep's table and line chart."""
    dataset = dataset_of(rows)
    title = (
        f"{flag_name(key)} swept with {sampler} on {dataset}: test metrics, mean ± std over seeds"
    )
    write_table(out, summary_table(rows, "value", title))
    series = sorted(
        (float(label), mean, spread)
        for label, mean, spread in metric_series(by_seed(rows, "value"), "mrr")
    )
    if series:
        xs, means, spreads = zip(*series, strict=True)
        line_chart(
            xs,
            means,
            spreads,
            f"Sensitivity of {sampler} to {flag_name(key)} on {dataset}",
            key,
            "test MRR (filtered)",
            out / CHART_FILE,
            log_x=xs[0] > 0 and xs[-1] / xs[0] >= 100,
        )
