"""Ranking metrics and the evaluation entry point."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dans.data.graph import KnowledgeGraph
from dans.distributed import gather_objects, shard
from dans.evaluation.ranking import DEFAULT_MEMORY_MB, rank_against_sample, rank_triples
from dans.models.model import KGModel

HITS_AT = (1, 3, 10)
NDCG_AT = 5
# Every metric of RankMetrics, in the order tables print them.
METRIC_NAMES = ("mrr", "mr", *(f"hits@{k}" for k in HITS_AT), f"ndcg@{NDCG_AT}")


@dataclass(frozen=True)
class RankMetrics:
    """The metrics of a set of ranks: MRR, MR, Hits@1/3/10 and NDCG@5.

    NDCG@5 with a single relevant item is ``1 / log2(1 + rank)`` when rank <= 5, else 0.
    """

    mrr: float
    mr: float
    hits_at_1: float
    hits_at_3: float
    hits_at_10: float
    ndcg_at_5: float

    @classmethod
    def of(cls, ranks: Tensor) -> RankMetrics:
        """From ranks, shape (Q,), Q >= 1."""
        ranks = ranks.double()
        hits = [(ranks <= k).double().mean().item() for k in HITS_AT]
        gain = torch.where(ranks <= NDCG_AT, 1.0 / torch.log2(1.0 + ranks), torch.zeros_like(ranks))
        return cls((1.0 / ranks).mean().item(), ranks.mean().item(), *hits, gain.mean().item())

    def to_dict(self) -> dict[str, float]:
        """Keyed by :data:`METRIC_NAMES`, as tables, logs and ``metrics.json`` name them."""
        return dict(zip(METRIC_NAMES, dataclasses.astuple(self), strict=True))


@dataclass(frozen=True)
class Evaluation:
    """Filtered link-prediction metrics of one split: over head and tail queries together
    (``both``) and for each side, with the tie policy, the number of queries and the seconds
    the ranking took."""

    both: RankMetrics
    head: RankMetrics
    tail: RankMetrics
    ties: str
    queries: int
    seconds: float
    # 0: each query ranked against every entity; K: against K entities drawn for it, a sampled
    # protocol whose figures are higher and not comparable with the full ranking's.
    candidates: int = 0

    @property
    def mrr(self) -> float:
        return self.both.mrr

    @property
    def protocol(self) -> str:
        """How the ranks were made, as every output that shows these metrics names it."""
        if self.candidates:
            return f"sampled: each query against {self.candidates:,} random entities"
        return "every entity"

    def to_dict(self) -> dict[str, Any]:
        """The form ``metrics.json`` and ``dans evaluate --json`` write: the overall metrics at
        the top level, then ``head``, ``tail``, ``ties``, ``queries`` and ``seconds``."""
        return {
            **self.both.to_dict(),
            "head": self.head.to_dict(),
            "tail": self.tail.to_dict(),
            "ties": self.ties,
            "queries": self.queries,
            "seconds": self.seconds,
            **({"sampled_candidates": self.candidates} if self.candidates else {}),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Evaluation:
        """The inverse of :meth:`to_dict`."""

        def metrics(source: dict[str, Any]) -> RankMetrics:
            return RankMetrics(*(source[name] for name in METRIC_NAMES))

        return cls(
            metrics(values),
            metrics(values["head"]),
            metrics(values["tail"]),
            values["ties"],
            values["queries"],
            values["seconds"],
            values.get("sampled_candidates", 0),
        )


def evaluate(
    model: KGModel,
    kg: KnowledgeGraph,
    split: str = "test",
    ties: str = "realistic",
    memory_mb: float = DEFAULT_MEMORY_MB,
    candidates: int = 0,
    seed: int = 0,
) -> Evaluation:
    """Filtered link-prediction metrics of ``model`` on a split of ``kg``, both directions.

    ``memory_mb`` bounds the block of scores (queries x entities) held at once. In a process
    group each process ranks its share of the queries, and every process gets all the metrics.
    ``candidates``: rank each query against that many entities drawn with ``seed`` instead of
    every entity (see :func:`~dans.evaluation.ranking.rank_against_sample`); 0, every entity.
    """
    start = time.perf_counter()
    _, head, tail = split_ranks(model, kg, split, ties, memory_mb, candidates, seed)
    return _evaluation(head, tail, ties, time.perf_counter() - start, candidates)


def evaluate_by_relation(
    model: KGModel,
    kg: KnowledgeGraph,
    split: str = "test",
    ties: str = "realistic",
    memory_mb: float = DEFAULT_MEMORY_MB,
    candidates: int = 0,
    seed: int = 0,
) -> dict[str, Evaluation]:
    """:func:`evaluate` for the triples of each relation of the split, by relation name, in id
    order; a relation without triples in the split is left out. ``seconds`` is the time of the
    one ranking they share."""
    start = time.perf_counter()
    relations, head, tail = split_ranks(model, kg, split, ties, memory_mb, candidates, seed)
    seconds = time.perf_counter() - start
    # One sort puts each relation's ranks together: a pass over the ranks, not one per relation.
    order = torch.argsort(relations, stable=True)
    present, counts = torch.unique_consecutive(relations[order], return_counts=True)
    sizes = counts.tolist()
    return {
        kg.relation_names[r]: _evaluation(heads, tails, ties, seconds, candidates)
        for r, heads, tails in zip(
            present.tolist(), head[order].split(sizes), tail[order].split(sizes), strict=True
        )
    }


@torch.no_grad()
def split_ranks(
    model: KGModel,
    kg: KnowledgeGraph,
    split: str,
    ties: str,
    memory_mb: float,
    candidates: int = 0,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Each triple of the split's relation id and the filtered ranks of its head and tail
    queries, all shape (N,) on the CPU, in the split's order (gathered from a process group's
    shards); against every entity, or ``candidates`` drawn ones (see :func:`evaluate`)."""
    entities, relations = model.inference()
    triples = kg.split(split)[shard(len(kg.split(split)))]
    memory_elements = int(memory_mb * 2**20) // entities.element_size()
    generator = torch.Generator(device=entities.device).manual_seed(seed)
    by_side = {}
    for side in ("head", "tail"):
        common = (triples, entities, relations, model.decoder, kg.known_triples, side == "head")
        ranks = (
            rank_against_sample(*common, candidates, generator, memory_elements)
            if candidates
            else rank_triples(*common, memory_elements)
        )
        by_side[side] = ranks.select(ties).cpu()
    # Each process of a group ranked its own share of the queries: put them back together.
    parts = (triples[:, 1].cpu(), by_side["head"], by_side["tail"])
    relation_ids, head, tail = (torch.cat(gather_objects(part)) for part in parts)
    return relation_ids, head, tail


def _evaluation(
    head: Tensor, tail: Tensor, ties: str, seconds: float, candidates: int = 0
) -> Evaluation:
    return Evaluation(
        RankMetrics.of(torch.cat([head, tail])),
        RankMetrics.of(head),
        RankMetrics.of(tail),
        ties,
        2 * len(head),
        seconds,
        candidates,
    )
