"""Train RGCN + DistMult with DANS negatives on the bundled UMLS, then ask it questions.

python examples/train_and_predict.py [--epochs 100] [--out runs/example]
"""

import argparse
from pathlib import Path

import dans


def main(epochs: int, out: Path) -> None:
    config = dans.TrainConfig(dataset="umls", sampler="dans", epochs=epochs, device="cpu")
    run = dans.train(config, out=out, overwrite=out.exists(), progress=False)
    assert run.metrics is not None
    print(f"test MRR {run.metrics.test.mrr:.3f} after {run.metrics.epochs} epochs")
    # A finished run loads back from its folder, with its graph and its sampler.
    run = dans.load_run(out)
    query = dans.Query("body_part_organ_or_organ_component", "location_of", "?")
    (best,) = dans.predict(run, [query], k=5)
    for rank, entity, logit in best.ranked():
        print(f"{rank}. {entity} ({logit:.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/example"))
    args = parser.parse_args()
    main(args.epochs, args.out)
