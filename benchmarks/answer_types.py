"""How often a trained model's best wrong answers are of another type than the true one: for each
test query, its k best-scored entities once every known-true answer is removed, and the share of
them that have no type in common with the true answer (the types of the graph's
`KnowledgeGraph.entity_types`), for tail and head queries; mean ± std over the runs of a sampler.

    DANS_DATA_DIR=... python benchmarks/answer_types.py GRID/runs/*-distmult-seed* \
        --out benchmarks/results/nell_table/answer_types.json

A sampler that only draws negatives of the allowed types (CAKE) never teaches the model to push
the other types down, and the standard ranking scores every entity.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dans.data.graph import KnowledgeGraph
from dans.experiments.tables import mean_std_text, three
from dans.files import write_atomic
from dans.pipeline import Run, load_run
from dans.prediction import top_k

SIDES = {"tail": False, "head": True}


def other_type_shares(run: Run, k: int) -> dict[str, float]:
    """A trained run's share of other-type entities among each test query's ``k`` best wrong
    answers, by side of the query."""
    kg = run.kg
    membership = kg.entity_types.membership(kg.num_entities)  # (E, T)
    shares = {}
    for side, asks_head in SIDES.items():
        anchor_col, answer_col = (2, 0) if asks_head else (0, 2)
        anchors, answers = kg.test[:, anchor_col], kg.test[:, answer_col]
        _, ids = top_k(run.model, anchors, kg.test[:, 1], asks_head, k, exclude=kg.known_triples)
        common = (membership[ids] & membership[answers][:, None, :]).any(dim=2)  # (Q, k)
        shares[side] = (~common).float().mean().item()
    return shares


def chance_shares(kg: KnowledgeGraph) -> dict[str, float]:
    """The same share among all entities rather than the best-scored ones: what a model blind
    to types would give, by side of the query."""
    membership = kg.entity_types.membership(kg.num_entities).float()  # (E, T)
    shares = {}
    for side, asks_head in SIDES.items():
        answers = kg.test[:, 0 if asks_head else 2]
        # (E, T) @ (T, B) in blocks of answers, so that no (E, Q) matrix is held at once
        sharing = torch.cat(
            [(membership @ membership[block].T > 0).sum(dim=0) for block in answers.split(256)]
        )
        shares[side] = 1 - sharing.double().mean().item() / kg.num_entities
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="`dans train` run folders, one graph")
    parser.add_argument("--k", type=int, default=10, help="best wrong answers per query")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    by_sampler: dict[str, dict[str, list[float]]] = {}
    chance: dict[str, float] = {}
    for path in args.runs:
        run = load_run(path)
        chance = chance or chance_shares(run.kg)
        shares = other_type_shares(run, args.k)
        sides = by_sampler.setdefault(run.config.training.sampler, {})
        for side, share in shares.items():
            sides.setdefault(side, []).append(share)
        print(f"{path}: " + ", ".join(f"{side} {share:.3f}" for side, share in shares.items()))
    print("| sampler | runs | other type, tail queries | head queries |\n|---|---|---|---|")
    for sampler, sides in by_sampler.items():
        cells = " | ".join(mean_std_text(sides[side]) for side in SIDES)
        print(f"| {sampler} | {len(sides['tail'])} | {cells} |")
    print(f"| all entities | – | {' | '.join(three(chance[side]) for side in SIDES)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"k": args.k, "split": "test", "other_type_share": by_sampler, "chance": chance}
    write_atomic(args.out, (json.dumps(record, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
