"""Ranking metrics and the evaluation entry point."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from dans.data.graph import KnowledgeGraph
from dans.distributed import gather_objects, shard
from dans.evaluation.ranking import DEFAULT_MEMORY_MB, rank_triples
from dans.models.model import KGModel

HITS_AT = (1, 3, 10)
NDCG_AT = 5
# Every metric rank_metrics reports, in the order tables print them.
METRIC_NAMES = ("mrr", "mr", *(f"hits@{k}" for k in HITS_AT), f"ndcg@{NDCG_AT}")


def rank_metrics(ranks: Tensor) -> dict[str, float]:
    """MRR, MR, Hits@1/3/10 and NDCG@5 from ranks, shape (Q,).

    NDCG@5 with a single relevant item is ``1 / log2(1 + rank)`` when rank <= 5, else 0.
    """
    if len(ranks) == 0:
        return {}
    ranks = ranks.double()
    metrics = {"mrr": (1.0 / ranks).mean().item(), "mr": ranks.mean().item()}
    for k in HITS_AT:
        metrics[f"hits@{k}"] = (ranks <= k).double().mean().item()
    gain = torch.where(ranks <= NDCG_AT, 1.0 / torch.log2(1.0 + ranks), torch.zeros_like(ranks))
    metrics[f"ndcg@{NDCG_AT}"] = gain.mean().item()
    return metrics


@torch.no_grad()
def evaluate(
    model: KGModel,
    kg: KnowledgeGraph,
    split: str = "test",
    ties: str = "realistic",
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> dict:
    """Filtered link-prediction metrics of ``model`` on a split of ``kg``, both directions.

    ``memory_mb`` bounds the block of scores (queries x entities) held at once. In a process
    group each process ranks its share of the queries, and every process gets all the metrics.

    Returns the overall metrics (over head and tail queries together) at the top level, plus
    ``"head"`` and ``"tail"`` sub-dictionaries, ``"ties"``, ``"queries"`` and ``"seconds"``.
    """
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        entities, relations = model()
        triples = kg.split(split)
        by_side = {
            side: rank_triples(
                triples[shard(len(triples))],
                entities,
                relations,
                model.decoder,
                kg.known_triples,
                predict_head=side == "head",
                memory_elements=int(memory_mb * 2**20) // entities.element_size(),
            )
            .select(ties)
            .cpu()
            for side in ("head", "tail")
        }
    finally:
        model.train(was_training)
    # Each process of a group ranked its own share of the queries: put them back together.
    by_side = {side: torch.cat(gather_objects(ranks)) for side, ranks in by_side.items()}
    result: dict = rank_metrics(torch.cat(list(by_side.values())))
    for side, ranks in by_side.items():
        result[side] = rank_metrics(ranks)
    result.update(ties=ties, queries=2 * len(triples), seconds=time.perf_counter() - start)
    return result
