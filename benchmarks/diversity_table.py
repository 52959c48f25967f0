"""The diversity measures of a `dans compare` grid's runs (each run's `dans diversity` figures,
which results.csv carries), as mean ± std over seeds per sampler, for one decoder.

    python benchmarks/diversity_table.py GRID/results.csv --decoder distmult \
        --out benchmarks/results/compare_dans/diversity_distmult.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dans.experiments.diversity import DIVERSITY_COLUMNS
from dans.experiments.results import read_rows
from dans.experiments.tables import by_seed, mean_std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results.csv of a dans compare grid")
    parser.add_argument("--decoder", required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    rows = [
        row
        for row in read_rows(args.results)
        if row.key["decoder"] == args.decoder and row.finished
    ]
    found: dict[str, dict[str, list[float]]] = {}
    for sampler, runs in by_seed(rows, "sampler").items():
        found[sampler] = {
            "mrr": [run.test["mrr"] for run in runs.values()],
            **{key: [run.diversity[key] for run in runs.values()] for key in DIVERSITY_COLUMNS},
        }
    print("| sampler | seeds | test MRR | " + " | ".join(DIVERSITY_COLUMNS) + " |")
    print("|---" * (3 + len(DIVERSITY_COLUMNS)) + "|")
    for sampler, values in found.items():
        cells = [_mean_std(values[key]) for key in ("mrr", *DIVERSITY_COLUMNS)]
        print(f"| {sampler} | {len(values['mrr'])} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"decoder": args.decoder, "runs": found}, indent=2) + "\n")


def _mean_std(values: list[float]) -> str:
    # Three decimals with the leading zero: a mean pairwise distance is not a rate.
    return "{:.3f} ± {:.3f}".format(*mean_std(values))


if __name__ == "__main__":
    main()
