"""``dans ablate``: the paper's ablation (Fig. 2(a)): DANS against its generator pathways alone
and both pathways without FiLM, over seeds, for either DANS (``dans`` or ``dans-authors``)."""

from __future__ import annotations

from pathlib import Path

from dans.config import TrainConfig
from dans.errors import ConfigError
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
from dans.experiments.plots import bar_chart
from dans.experiments.results import GridRow
from dans.experiments.tables import by_seed, dataset_of, metric_series, summary_table
from dans.samplers import SAMPLERS, DANSSampler

CHART_FILE = "ablation.png"
# The config keys each variant sets.
ABLATION_KEYS = ("seed", "dans_pathways", "dans_film")


def ablate(
    config: TrainConfig,
    seeds: Seeds,
    out: Path,
    options: GridOptions = DEFAULT_OPTIONS,
) -> list[GridRow]:
    """Train each variant of :data:`dans.experiments.paper.ABLATIONS` with ``config``'s DANS
    for ``seeds`` (a count N: seeds 1..N) into ``out/runs``, resuming as ``dans compare`` does;
    writes ``results.csv``, ``table.md`` and ``ablation.png`` and returns the result rows."""
    return ablation_grid(config, seeds).run(out, options)


def ablation_grid(config: TrainConfig, seeds: Seeds) -> Grid:
    """Each variant of :data:`dans.experiments.paper.ABLATIONS` as a run of ``config``'s DANS,
    summarised as ``table.md`` and ``ablation.png``."""
    if not issubclass(SAMPLERS.get(config.training.sampler), DANSSampler):
        raise ConfigError(
            f"dans ablate varies DANS's generator; got --sampler {config.training.sampler}"
        )
    runs = [
        GridRun(
            f"{variant}-seed{seed}",
            f"{variant}, seed {seed}",
            config.replace(seed=seed, **changes),
            {"variant": variant},
        )
        for variant, changes in paper.ABLATIONS.items()
        for seed in seed_list(seeds)
    ]
    return Grid(runs, ("variant",), _summarize)


def _summarize(rows: list[GridRow], out: Path) -> None:
    """The ablation's table and bar chart."""
    dataset = dataset_of(rows)
    title = f"DANS ablation on {dataset}: test metrics, mean ± std over seeds"
    write_table(out, summary_table(rows, "variant", title))
    series = metric_series(by_seed(rows, "variant"), "mrr")
    if series:
        labels, means, spreads = zip(*series, strict=True)
        bar_chart(
            labels,
            means,
            spreads,
            f"Ablation of DANS on {dataset} (G_E, G_R, G_ER without FiLM)",
            "variant",
            "test MRR (filtered)",
            out / CHART_FILE,
        )
