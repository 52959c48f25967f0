"""``dans compare``: a grid of samplers x decoders x seeds on one dataset, resumable, summarised
as the paper's Tables 2 and 3 with paired tests of each sampler against uniform and NSCaching,
Holm-corrected across the table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dans.config import TrainConfig
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
from dans.experiments.results import GridRow
from dans.experiments.tables import (
    RANKS_NOTE,
    TABLE_METRICS,
    by_seed,
    dataset_of,
    header,
    holm,
    metric_cells,
    mrr_p_value,
    p_text,
    seeds_cell,
)

# The config keys the grid sets for each run, and the results.csv columns that name a run.
GRID_KEYS = ("sampler", "decoder", "seed")
KEY_COLUMNS = ("sampler", "decoder")


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    sampler: str
    decoder: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.sampler}-{self.decoder}-seed{self.seed}"


def grid(samplers: Sequence[str], decoders: Sequence[str], seeds: Seeds) -> list[Cell]:
    """Every (sampler, decoder, seed) over ``seeds`` (a count N: seeds 1..N), decoders outermost."""
    return [
        Cell(sampler, decoder, seed)
        for decoder in decoders
        for sampler in samplers
        for seed in seed_list(seeds)
    ]


def comparison_grid(
    config: TrainConfig, samplers: Sequence[str], decoders: Sequence[str], seeds: Seeds
) -> Grid:
    """Every cell as a run of ``config``, summarised as ``table.md``."""
    runs = [
        GridRun(
            cell.name,
            f"{cell.sampler} + {cell.decoder}, seed {cell.seed}",
            config.replace(sampler=cell.sampler, decoder=cell.decoder, seed=cell.seed),
            {"sampler": cell.sampler, "decoder": cell.decoder},
        )
        for cell in grid(samplers, decoders, seeds)
    ]
    return Grid(runs, KEY_COLUMNS, _write_table)


def compare(
    config: TrainConfig,
    samplers: Sequence[str],
    decoders: Sequence[str],
    seeds: Seeds,
    out: Path,
    options: GridOptions = DEFAULT_OPTIONS,
) -> list[GridRow]:
    """Train every cell not finished before into ``out/runs/<cell>`` (see
    :mod:`dans.experiments.grids`), ``jobs`` at a time, then write ``results.csv`` and
    ``table.md``; returns the result rows.

    Results are rewritten after every run, so an interrupted grid keeps what it did.
    """
    return comparison_grid(config, samplers, decoders, seeds).run(out, options)


def _write_table(rows: list[GridRow], out: Path) -> None:
    write_table(out, render_table(rows))


def render_table(rows: Sequence[GridRow]) -> str:
    """The paper's layout: a block of samplers per decoder; MRR, H@1 and NDCG@5 as mean ± std
    over seeds, the best of each column in bold and the runner-up underlined; a paired t-test of
    each sampler's MRR against each baseline present (uniform, NSCaching) over the seeds both
    ran, Holm-corrected across every distinct test in the table."""
    decoders = list(dict.fromkeys(row.key["decoder"] for row in rows))
    blocks = {
        d: by_seed([row for row in rows if row.key["decoder"] == d], "sampler") for d in decoders
    }
    baselines = [b for b in paper.BASELINES if any(b in groups for groups in blocks.values())]
    # Each test once: uniform against NSCaching is the same test as NSCaching against uniform.
    tests = list(
        dict.fromkeys(
            (decoder, frozenset((sampler, baseline)))
            for decoder, groups in blocks.items()
            for sampler in groups
            for baseline in baselines
            if sampler != baseline
        )
    )
    raw = [mrr_p_value(blocks[d].get(a, {}), blocks[d].get(b, {})) for d, (a, b) in tests]
    corrected = dict(zip(tests, holm(raw), strict=True))
    tested = (
        f" p: two-sided paired t-test of MRR against {' and against '.join(baselines)} over "
        "seeds, Holm-corrected across the table (–: no test)."
        if baselines
        else ""
    )
    lines = [
        f"Test metrics on {dataset_of(rows)}, mean ± std over seeds ({RANKS_NOTE}).{tested}",
        "",
        *header("sampler", [f"p ({baseline})" for baseline in baselines]),
    ]
    for decoder, groups in blocks.items():
        block = [row for row in rows if row.key["decoder"] == decoder]
        cells = metric_cells(groups)
        title = paper.DECODER_TITLES.get(decoder, decoder)
        lines.append(f"| **{title}** |" + " |" * (len(TABLE_METRICS) + 1 + len(baselines)))
        for sampler, runs in groups.items():
            seeds = seeds_cell(block, runs, {"sampler": sampler})
            ps = [
                p_text(sampler, b, corrected.get((decoder, frozenset((sampler, b))), math.nan))
                for b in baselines
            ]
            lines.append(f"| {sampler} | {seeds} | " + " | ".join([*cells[sampler], *ps]) + " |")
    return "\n".join(lines) + "\n"
