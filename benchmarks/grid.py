"""Train a grid of configurations; report valid and test metrics, pick the best on valid MRR only.

Example:
    python benchmarks/grid.py --grid lr=0.001,0.003,0.01 l2=0.01,0.001 --set epochs=300 \
        --out benchmarks/results/tune_umls.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import dans


def parse_grid(items: list[str]) -> dict[str, list]:
    fields = {spec.name: spec.type for spec in dataclasses.fields(dans.TrainConfig)}
    grid = {}
    for item in items:
        key, values = item.split("=", 1)
        kind = {"int": int, "float": float, "str": str, "bool": _boolean}[str(fields[key])]
        grid[key] = [kind(value) for value in values.split(",")]
    return grid


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text == "true"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", nargs="+", required=True, help="key=v1,v2 ...")
    parser.add_argument("--set", nargs="*", default=[], help="fixed key=value settings")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fixed = {k: v[0] for k, v in parse_grid(args.set).items()}
    grid = parse_grid(args.grid)
    rows = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        config = dans.TrainConfig(**{**fixed, **setting})
        metrics = dans.train(config, progress=False).metrics or {}
        row = {
            **setting,
            "valid_mrr": metrics["valid"]["mrr"],
            "test_mrr": metrics["test"]["mrr"],
            "test_hits@1": metrics["test"]["hits@1"],
            "test_ndcg@5": metrics["test"]["ndcg@5"],
            "best_epoch": metrics["best_epoch"],
            "epochs": metrics["epochs"],
            "train_seconds": metrics["train_seconds"],
            "seconds_per_epoch": metrics["seconds_per_epoch"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    best = max(rows, key=lambda row: row["valid_mrr"])
    print("best on validation:", json.dumps(best))
    args.out.write_text(
        json.dumps({"fixed": fixed, "grid": grid, "runs": rows, "best": best}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
