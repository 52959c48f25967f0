"""``dans sweep``: test metrics against settings over seeds, as the paper's parameter sensitivity
study (Fig. 2(b) for N_s, Fig. 2(c) for the FiLM regulariser lambda), or over a grid of several
settings (every combination of their values)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from dans.config import COMPONENTS, TrainConfig
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
# Settings a sweep leaves to its own flags: the seeds are --seeds, and the device says where the
# runs train, not what they train.
_NOT_SWEPT = ("seed", "device")
# How a sweep's results.csv names the settings of its runs, several joined by this.
JOIN = ","


def sweep_key(name: str) -> str:
    """The config key that ``name`` (a key, a flag such as ``--negatives``, or an alias of
    :data:`dans.experiments.paper.SWEEP_ALIASES`) names; refuses the seed and the device."""
    key = name.removeprefix("--").replace("-", "_")
    key = paper.SWEEP_ALIASES.get(key, key)
    if key in _NOT_SWEPT:
        raise DansError(f"--param: {key} is not swept; use --seeds for seeds, --device for where")
    if key not in TrainConfig.specs():
        raise DansError(
            f"--param: {name!r} is not a setting of `dans train` (n_negatives and lambda are "
            "read as negatives and dans_film_lambda)"
        )
    return key


def sweep_values(key: str, texts: Sequence[str]) -> list[int | float | bool | str]:
    """``texts`` read as the type of ``key``, each once (ranges are checked when the runs'
    configurations are made)."""
    kind = value_type(TrainConfig.specs()[key])
    values: list[int | float | bool | str] = []
    for text in texts:
        value = _read(kind, text)
        if value in values:
            raise DansError(f"--values: {text!r} is given twice")
        values.append(value)
    return values


def _read(kind: type, text: str) -> int | float | bool | str:
    if kind is bool:
        if text not in ("true", "false"):
            raise DansError(f"--values: {text!r} is not true or false")
        return text == "true"
    if kind is str:
        if "/" in text:
            raise DansError(f"--values: {text!r} cannot name a run's folder (it holds a /)")
        return text
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DansError(
            f"--values: {text!r} is not {'an int' if kind is int else 'a finite number'}"
        )
    return value


def value_label(value: float | bool | str) -> str:
    """How a value names its runs and rows: exact, so that distinct values never share a run
    directory (``1e-05``, ``0.0001``, ``20``, ``true``, ``snap``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


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
    return sweep_grid(config, {param: values}, seeds, out, options)


def sweep_grid(
    config: TrainConfig,
    settings: Mapping[str, Sequence[str]],
    seeds: Seeds,
    out: Path,
    options: GridOptions = DEFAULT_OPTIONS,
) -> list[GridRow]:
    """:func:`sweep` over every combination of the values of several ``settings`` (name -> the
    values' texts, as on the command line). results.csv names each run's settings in its
    ``param`` column and their values in ``value``, joined by commas when there are several
    (``lr,l2`` and ``0.001,0.01``); ``sweep.png`` is drawn for one numeric setting."""
    return settings_grid(config, settings, seeds).run(out, options)


def settings_grid(config: TrainConfig, settings: Mapping[str, Sequence[str]], seeds: Seeds) -> Grid:
    """Every combination of the values of ``settings`` as a run of ``config``, summarised as
    :func:`sweep_grid` says."""
    keys = [sweep_key(name) for name in settings]
    if len(set(keys)) < len(keys):
        raise DansError("--param: a setting is named twice")
    varied = [kind for kind in COMPONENTS if kind in keys]
    for key in keys:
        unused = config.unused(key, varied)
        if unused:
            raise DansError(f"--param {unused}: every value would train the same model")
    grids = [sweep_values(key, texts) for key, texts in zip(keys, settings.values(), strict=True)]
    runs = []
    for values in itertools.product(*grids):
        labels = [value_label(value) for value in values]
        pairs = list(zip(keys, labels, strict=True))
        name = ",".join(f"{key}={label}" for key, label in pairs)
        said = ", ".join(f"{flag_name(key)} {label}" for key, label in pairs)
        changed = dict(zip(keys, values, strict=True))
        for seed in seed_list(seeds):
            runs.append(
                GridRun(
                    f"{name}-seed{seed}",
                    f"{said}, seed {seed}",
                    config.replace(seed=seed, **changed),
                    {"param": JOIN.join(keys), "value": JOIN.join(labels)},
                )
            )
    numeric = len(keys) == 1 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in grids[0]
    )
    return Grid(
        runs,
        ("param", "value"),
        lambda rows, folder: _summarize(rows, folder, keys, config.training.sampler, numeric),
    )


def _summarize(
    rows: list[GridRow], out: Path, keys: Sequence[str], sampler: str, chart: bool
) -> None:
    """The sweep's table and, when ``chart``, its line chart."""
    dataset = dataset_of(rows)
    swept = ", ".join(flag_name(key) for key in keys)
    title = f"{swept} swept with {sampler} on {dataset}: test metrics, mean ± std over seeds"
    write_table(out, summary_table(rows, "value", title))
    if not chart:
        return
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
            f"Sensitivity of {sampler} to {swept} on {dataset}",
            keys[0],
            "test MRR (filtered)",
            out / CHART_FILE,
            log_x=xs[0] > 0 and xs[-1] / xs[0] >= 100,
        )
