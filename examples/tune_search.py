"""A search with `dans tune` from Python: the learning rate and L2 penalty of uniform RGCN +
DistMult on UMLS, judged on validation MRR (needs `pip install 'dans-kge[tune]'`). The same as

    dans tune --space space.toml --trials 8 --out runs/search

    python examples/tune_search.py [--trials 8] [--epochs 30] [--out runs/search]
"""

import argparse
from pathlib import Path

import dans
from dans.experiments.tuning import Dimension, TuneOptions, tune

SPACE = [
    Dimension("lr", low=1e-3, high=3e-2, log=True),
    Dimension("l2", low=1e-4, high=1e-1, log=True),
]


def main(trials: int, epochs: int, out: Path) -> None:
    base = dans.TrainConfig(encoder="lookup", epochs=epochs, eval_every=5, device="cpu")
    result = tune(base, SPACE, trials, out, TuneOptions(report=lambda line: None))
    best = result.best_config.training
    print(
        f"best of {result.finished}: trial {result.best_trial}, validation MRR "
        f"{result.best_valid_mrr:.3f} at lr {best.lr:.2g}, l2 {best.l2:.2g}"
    )
    print(f"its settings: {out / 'config.toml'} (dans train --config {out / 'config.toml'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/search"))
    args = parser.parse_args()
    main(args.trials, args.epochs, args.out)
