"""Mean ± std over seeds of grid runs, as a Markdown table.

python benchmarks/summarize.py benchmarks/results/umls_table2.json --by decoder sampler
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRICS = (
    "test_mrr",
    "test_hits@1",
    "test_ndcg@5",
    "valid_mrr",
    "seconds_per_epoch",
    "train_seconds",
)


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by grid.py")
    parser.add_argument("--by", nargs="+", required=True, help="keys that name a group")
    args = parser.parse_args()
    runs = []
    for path in args.results:
        result = json.loads(path.read_text())
        # A grid's fixed settings (--set) belong to each of its runs.
        runs += [{**result["fixed"], **run} for run in result["runs"]]
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(tuple(run.get(key) for key in args.by), []).append(run)
    print("| " + " | ".join([*args.by, "runs", *METRICS]) + " |")
    print("|" + "---|" * (len(args.by) + 1 + len(METRICS)))
    for key, members in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        cells = [
            _mean_std([run[m] for run in members]) if all(m in run for run in members) else "-"
            for m in METRICS
        ]
        print("| " + " | ".join([*map(str, key), str(len(members)), *cells]) + " |")


if __name__ == "__main__":
    main()
