"""Train on a graph of your own, given as labelled triples: cut into train, valid and test by
`dans.data.split`, made a graph by `KnowledgeGraph.from_triples`, trained like any dataset.

    python examples/own_graph.py [--epochs 50] [--out runs/own-graph]
"""

import argparse
from pathlib import Path

import dans
from dans.data import KnowledgeGraph, split

# A small family graph; any (head, relation, tail) names will do.
PEOPLE = [f"person{i}" for i in range(40)]
TRIPLES = [(PEOPLE[i], "parent_of", PEOPLE[i + 1]) for i in range(39)]
TRIPLES += [(PEOPLE[i + 1], "child_of", PEOPLE[i]) for i in range(39)]
TRIPLES += [(PEOPLE[i], "sibling_of", PEOPLE[i + 2]) for i in range(0, 38, 2)]


def main(epochs: int, out: Path) -> None:
    # Every entity and relation held out for valid and test also occurs in train.
    train, valid, test = split(TRIPLES, valid=0.1, test=0.1, seed=1)
    kg = KnowledgeGraph.from_triples(train, valid, test, name="family")
    print(f"{kg.num_entities} entities, {kg.num_relations} relations, {len(kg.train)} train")
    config = dans.TrainConfig(encoder="lookup", dim=16, epochs=epochs, device="cpu")
    run = dans.train(config, out=out, overwrite=out.exists(), progress=False, graph=kg)
    assert run.metrics is not None
    print(f"test MRR {run.metrics.test.mrr:.3f}")
    # The run loads back with the same graph.
    run = dans.load_run(out, graph=kg)
    print(f"reloaded: {run.kg.name}, {run.kg.num_entities} entities")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/own-graph"))
    args = parser.parse_args()
    main(args.epochs, args.out)
