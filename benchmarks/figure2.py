"""The paper's Figure 2 from the committed ablations and sweeps of DANS (DistMult), a column per
graph, each panel on its own y axis as the paper draws them: (a) the ablation of the pathways and
FiLM, (b) test MRR against the number of negatives N_s, (c) against the FiLM regulariser lambda.

    python benchmarks/figure2.py --out docs/figures/figure2.png

Each panel reads ``benchmarks/results/PREFIX_ablation``, ``PREFIX_sweep_negatives`` or
``PREFIX_sweep_lambda`` (the ``--out`` folder of `dans ablate` or `dans sweep`, or their
results.csv alone), mean ± std over the seeds that finished; a graph whose grid has no finished
run yet says so in its panel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dans.experiments.plots import Chart, chart_grid
from dans.experiments.results import RESULTS_FILE, read_rows
from dans.experiments.tables import by_seed, metric_series

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
# (title, folder prefix under benchmarks/results), in the paper's order of columns.
GRAPHS = (("UMLS", "umls"), ("WN18RR", "wn18rr"), ("NELL-995", "nell"))
# (folder suffix, the results.csv column that names a point, x label, log x axis), a row each.
PANELS = (
    ("ablation", "variant", "(a) variant (G_E, G_R, G_ER without FiLM)", False),
    ("sweep_negatives", "value", "(b) negatives per positive N_s", False),
    ("sweep_lambda", "value", "(c) FiLM regulariser lambda", True),
)


def charts(results: Path, suffix: str, column: str, log_x: bool) -> list[Chart]:
    """One panel's chart per graph: test MRR at each point (numeric points in ascending order),
    titled with the graph and its seeds per point."""
    found = []
    for title, prefix in GRAPHS:
        path = results / f"{prefix}_{suffix}" / RESULTS_FILE
        groups = by_seed(read_rows(path), column) if path.exists() else {}
        points = metric_series(groups, "mrr")
        if column == "value":
            points = sorted((float(label), mean, std) for label, mean, std in points)
        seeds = sorted({len(runs) for runs in groups.values() if runs})
        if seeds:
            counted = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
            title += f" ({counted} seed{'s' * (counted != '1')})"
        found.append(Chart(title, points, log_x))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folders' parent")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    rows = [
        (xlabel, charts(args.results, suffix, column, log_x))
        for suffix, column, xlabel, log_x in PANELS
    ]
    chart_grid(rows, "test MRR (filtered)", args.out)
    print(f"chart: {args.out}")


if __name__ == "__main__":
    main()
