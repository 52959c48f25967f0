"""Train on a graph of your own, given as labelled triples: written as the three split files
dans reads (one `head<TAB>relation<TAB>tail` per line), then trained like any dataset.

    python examples/own_graph.py [--epochs 50] [--out runs/own-graph]
"""

import argparse
import random
from pathlib import Path

import dans

# A small family graph; any (head, relation, tail) names will do.
PEOPLE = [f"person{i}" for i in range(40)]
TRIPLES = [(PEOPLE[i], "parent_of", PEOPLE[i + 1]) for i in range(39)]
TRIPLES += [(PEOPLE[i + 1], "child_of", PEOPLE[i]) for i in range(39)]
TRIPLES += [(PEOPLE[i], "sibling_of", PEOPLE[i + 2]) for i in range(0, 38, 2)]


def write_splits(triples: list[tuple[str, str, str]], folder: Path, seed: int = 1) -> None:
    """train.txt, valid.txt and test.txt in ``folder``: 80/10/10, shuffled with ``seed``."""
    shuffled = random.Random(seed).sample(triples, len(triples))
    cut = [len(triples) * 8 // 10, len(triples) * 9 // 10]
    parts = {"train": shuffled[: cut[0]], "valid": shuffled[cut[0] : cut[1]]}
    parts["test"] = shuffled[cut[1] :]
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in parts.items():
        (folder / f"{split}.txt").write_text("".join("\t".join(t) + "\n" for t in rows))


def main(epochs: int, out: Path) -> None:
    write_splits(TRIPLES, out / "data")
    kg = dans.load_dataset(data_dir=out / "data")
    print(f"{kg.num_entities} entities, {kg.num_relations} relations, {len(kg.train)} train")
    config = dans.TrainConfig(
        data_dir=str(out / "data"), encoder="lookup", dim=16, epochs=epochs, device="cpu"
    )
    run = dans.train(config, out=out / "run", overwrite=(out / "run").exists(), progress=False)
    assert run.metrics is not None
    print(f"test MRR {run.metrics.test.mrr:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/own-graph"))
    args = parser.parse_args()
    main(args.epochs, args.out)
