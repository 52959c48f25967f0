"""What the paper fixes for its experiments, in one place: the samplers and decoders of its
Tables 2 and 3 in its order, the baselines its tests compare against, the decoders' titles, the
variants of its ablation (Fig. 2(a)), the names of the settings it sweeps (Fig. 2(b) and (c)),
its published figures, and its table laid out beside them (:func:`paper_table`). `dans
compare`, `dans ablate`, `dans sweep`, the table renderers and the documentation take them
from here."""

from __future__ import annotations

import functools
import json
import math
import statistics
from pathlib import Path
from typing import Any

from dans.experiments.results import GridRow
from dans.experiments.tables import (
    TABLE_METRICS,
    by_seed,
    holm,
    metric_cells,
    mrr_p_value,
    p_text,
    three,
)

# The samplers of the paper's Tables 2 and 3, in its order; DANS as the paper has it, then with
# the GAN schedule of the authors' code.
SAMPLERS = (
    "uniform",
    "popularity",
    "self-adv",
    "mcns",
    "nscaching",
    "kbgan",
    "sans",
    "cake",
    "smile",
    "dans",
    "dans-authors",
)
DECODERS = ("distmult", "complex", "rotate")
DECODER_TITLES = {"distmult": "DistMult", "complex": "ComplEx", "rotate": "RotatE"}
# The samplers every other one is tested against, where a table has them.
BASELINES = ("uniform", "nscaching")
# The ablation's variants: its three ablations do without FiLM.
ABLATIONS: dict[str, dict[str, Any]] = {
    "G_E": {"dans_pathways": "entity", "dans_film": False},
    "G_R": {"dans_pathways": "relation", "dans_film": False},
    "G_ER": {"dans_pathways": "both", "dans_film": False},
    "DANS": {"dans_pathways": "both", "dans_film": True},
}
# The paper's names for the two settings it sweeps.
SWEEP_ALIASES = {"n_negatives": "negatives", "lambda": "dans_film_lambda"}

PUBLISHED_FILE = Path(__file__).with_name("paper_values.json")


@functools.cache
def published() -> dict[str, Any]:
    """The paper's Tables 2 and 3: ``values[dataset][decoder][sampler][metric]`` is its
    ``[mean, std]`` over five seeds (``mrr``, ``hits@1``, ``ndcg@5``), ``rows`` the paper's
    name of each sampler's row."""
    return json.loads(PUBLISHED_FILE.read_text())


# A run of a comparison: its sampler, decoder and seed.
RunKey = tuple[str, str, int]


def paper_table(
    rows: list[GridRow],
    published: dict[str, dict[str, dict[str, list[float]]]],
    samplers: list[str],
    decoders: list[str],
    seeds: int,
    epochs: dict[RunKey, float],
) -> tuple[str, list[dict]]:
    """The table as markdown, and one record per (decoder, sampler) cell; ``epochs`` gives each
    run's median epoch seconds by (sampler, decoder, seed)."""
    blocks = {
        decoder: by_seed([row for row in rows if row.key["decoder"] == decoder], "sampler")
        for decoder in decoders
    }
    tests = [(d, s) for d in decoders for s in samplers if s != "uniform"]
    raw = [mrr_p_value(blocks[d].get(s, {}), blocks[d].get("uniform", {})) for d, s in tests]
    corrected = dict(zip(tests, holm(raw), strict=True))
    titles = [f"{title} | paper" for _, title in TABLE_METRICS]
    lines = [
        f"Test metrics, mean ± std over seeds (filtered, realistic ranks), each beside the "
        f"paper's mean; a cell is complete with {seeds} seeds. p: two-sided paired t-test of MRR "
        "against uniform over seeds, Holm-corrected across the table (–: no test). ran on: "
        "where the cell's runs trained; its seconds per epoch and peak memory are that device's "
        "(the process's resident set on a CPU, CUDA's allocations on a GPU).",
        "",
        f"| sampler | seeds | {' | '.join(titles)} | p | ran on | s/epoch | peak MiB |",
        "|---" * (2 + 2 * len(TABLE_METRICS) + 4) + "|",
    ]
    figures = []
    for decoder in decoders:
        groups = {sampler: blocks[decoder].get(sampler, {}) for sampler in samplers}
        if not any(groups.values()):
            continue
        styled = metric_cells(groups)
        lines.append(f"| **{DECODER_TITLES[decoder]}** |" + " |" * (2 * len(TABLE_METRICS) + 5))
        for sampler, runs in groups.items():
            theirs = published.get(decoder, {}).get(sampler, {})
            if not runs and not theirs:
                continue  # neither run here nor in the paper: a row of dashes says nothing
            ours = styled[sampler]
            cells = [
                f"{mine} | {three(theirs[key][0]) if key in theirs else '–'}"
                for mine, (key, _) in zip(ours, TABLE_METRICS, strict=True)
            ]
            p = corrected.get((decoder, sampler), math.nan)
            speed, peak = _cost(runs, epochs)
            devices = sorted({run.device or "unrecorded" for run in runs.values()})
            complete = "" if len(runs) in (0, seeds) else " (incomplete)"
            lines.append(
                f"| {sampler} | {len(runs)}{complete} | {' | '.join(cells)} | "
                f"{p_text(sampler, 'uniform', p)} | {', '.join(devices) or '–'} | {speed} | "
                f"{peak} |"
            )
            figures.append(
                {
                    "decoder": decoder,
                    "sampler": sampler,
                    "seeds": sorted(runs),
                    "ours": {
                        key: [run.test[key] for run in runs.values()] for key, _ in TABLE_METRICS
                    },
                    "paper": theirs,
                    "p_holm_vs_uniform": None if math.isnan(p) else p,
                    "devices": devices,
                    "seconds_per_epoch": speed,
                    "peak_memory_mib": peak,
                }
            )
    missing = [DECODER_TITLES[d] for d in decoders if not any(blocks[d].values())]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n", figures


def _cost(runs: dict[int, GridRow], epochs: dict[RunKey, float]) -> tuple[str, str]:
    """The mean over seeds of each run's median epoch seconds (two decimals under a second, as
    UMLS's epochs are, one above), and the largest peak memory recorded."""
    if not runs:
        return "–", "–"
    speed = statistics.fmean(epochs[run_key(r)] for r in runs.values())
    peaks = [r.peak_memory_mb for r in runs.values() if r.peak_memory_mb is not None]
    return f"{speed:.{2 if speed < 1 else 1}f}", f"{max(peaks):.0f}" if peaks else "–"


def run_key(row: GridRow) -> RunKey:
    """A result row's (sampler, decoder, seed)."""
    return row.key["sampler"], row.key["decoder"], row.seed
