"""The L2 penalty's scope chosen on validation: UMLS with the default settings, the penalty on
the whole entity table (``--l2-scope table``) against the batch's rows (``batch``), over seeds.

    python benchmarks/l2_scope.py --seeds 3 --out benchmarks/results/l2_scope.json

Writes each run's validation and test MRR and each scope's mean; the choice is made on
validation.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import dans
from dans.config import L2_SCOPES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    runs = []
    for scope in L2_SCOPES:
        for seed in range(1, args.seeds + 1):
            config = dans.TrainConfig(l2_scope=scope, seed=seed, device="cpu")
            metrics = dans.train(config, progress=False).metrics
            runs.append(
                {
                    "l2_scope": scope,
                    "seed": seed,
                    "valid_mrr": metrics.valid.mrr,
                    "test_mrr": metrics.test.mrr,
                    "best_epoch": metrics.best_epoch,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    means = {
        scope: {
            key: statistics.fmean(run[key] for run in runs if run["l2_scope"] == scope)
            for key in ("valid_mrr", "test_mrr")
        }
        for scope in L2_SCOPES
    }
    chosen = max(L2_SCOPES, key=lambda scope: means[scope]["valid_mrr"])
    found = {"dataset": "umls", "runs": runs, "means": means, "chosen_on_valid": chosen}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps(found["means"], indent=2), "chosen:", chosen)


if __name__ == "__main__":
    main()
