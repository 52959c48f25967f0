"""Link prediction with a trained model: the k best entities for ``(head, relation, ?)`` or
``(?, relation, tail)``, by name, from one product over all entities per block of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import LongTensor, Tensor

from dans.data.graph import KnowledgeGraph, KnownTriples
from dans.data.triples import read_numbered_triples
from dans.errors import DataError
from dans.models.model import KGModel

if TYPE_CHECKING:
    from dans.rundir import Run

# The name that marks the entity a query asks for.
ASKED = "?"
# Scores held at once while ranking, in elements: blocks of queries stay near 64 MB in float32.
_BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Query:
    """``(head, relation, tail)`` names with :data:`ASKED` in place of the entity asked for;
    ``source`` says where it came from (``FILE:LINE``) for errors."""

    head: str
    relation: str
    tail: str
    source: str = ""

    @property
    def asks_head(self) -> bool:
        return self.head == ASKED

    def __str__(self) -> str:
        return f"({self.head}, {self.relation}, {self.tail})"


@dataclass(frozen=True)
class Prediction:
    """A query's best entities, best first, with the decoder's logits."""

    query: Query
    entities: list[str]
    scores: list[float]

    def ranked(self) -> list[tuple[int, str, float]]:
        """``(rank, entity, logit)`` from rank 1."""
        pairs = zip(self.entities, self.scores, strict=True)
        return [(rank, name, score) for rank, (name, score) in enumerate(pairs, 1)]


def top_k(
    model: KGModel,
    anchors: LongTensor,
    relations: LongTensor,
    asks_head: bool,
    k: int,
    exclude: KnownTriples | None = None,
) -> tuple[Tensor, LongTensor]:
    """The ``k`` best-scored entities of each query, shapes (Q, k): their logits and ids.

    ``anchors`` and ``relations``, shape (Q,): the head (tail queries) or the tail (head
    queries) and the relation of each query. Every entity is scored in one product per block
    of queries; entities that complete a triple of ``exclude`` are left out (their logit is
    -inf, so they come last when fewer than ``k`` remain).
    """
    entities, relation_table = model.inference()
    with torch.no_grad():
        device = entities.device
        rows = max(1, _BLOCK_ELEMENTS // len(entities))
        k = min(k, len(entities))
        values, ids = [], []
        for start in range(0, len(anchors), rows):
            anchor, relation = anchors[start : start + rows], relations[start : start + rows]
            anchor_vectors = entities[anchor.to(device)]
            relation_vectors = relation_table[relation.to(device)]
            scores = (
                model.decoder.score_all_heads(relation_vectors, anchor_vectors, entities)
                if asks_head
                else model.decoder.score_all_tails(anchor_vectors, relation_vectors, entities)
            )
            if exclude is not None:
                query_index, known = exclude.answers(anchor, relation, asks_head)
                scores[query_index.to(device), known.to(device)] = -torch.inf
            best = scores.topk(k, dim=1)
            values.append(best.values.cpu())
            ids.append(best.indices.cpu())
    if not values:
        return torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
    return torch.cat(values), torch.cat(ids)


def predict(
    run: Run, queries: Sequence[Query], k: int = 10, exclude_train: bool = False
) -> list[Prediction]:
    """The ``k`` best entities for each query, in the queries' order.

    ``exclude_train`` leaves out the entities that would complete a train triple, so only
    new facts are proposed. Raises :class:`~dans.errors.DataError` naming the query's source
    for an unknown name, or a query that asks for no entity or for both, before any scoring.

    ``dans.predict(run, [Query("?", "location_of", "disease_or_syndrome")], k=5)``
    """
    kg = run.kg
    ids = [_ids(query, kg) for query in queries]
    exclude = kg.train_known_triples if exclude_train else None
    found: dict[int, Prediction] = {}
    for asks_head in (False, True):
        chosen = [i for i, query in enumerate(queries) if query.asks_head == asks_head]
        if not chosen:
            continue
        anchors, relations = torch.tensor([ids[i] for i in chosen], dtype=torch.long).unbind(1)
        scores, best = top_k(run.model, anchors, relations, asks_head, k, exclude)
        for row, i in enumerate(chosen):
            kept = torch.isfinite(scores[row])
            found[i] = Prediction(
                queries[i],
                [kg.entity_names[e] for e in best[row][kept].tolist()],
                scores[row][kept].tolist(),
            )
    return [found[i] for i in range(len(queries))]


def read_queries(path: Path) -> list[Query]:
    """A TSV of queries, one ``head<TAB>relation<TAB>tail`` per line with ``?`` for the entity
    asked for; raises :class:`~dans.errors.DataError` naming the file and line."""
    return [
        Query(head, relation, tail, f"{path}:{number}")
        for number, (head, relation, tail) in read_numbered_triples(path)
    ]


def _ids(query: Query, kg: KnowledgeGraph) -> tuple[int, int]:
    """The anchor's and the relation's ids of ``query``; raises :class:`DataError`, naming the
    query's source, when it asks for no entity or for both, or names one ``kg`` lacks."""
    where = f"{query.source}: " if query.source else ""
    if (query.head == ASKED) == (query.tail == ASKED):
        raise DataError(f"{where}query {query} must have {ASKED} as its head or its tail")
    try:
        anchor = kg.entity_id(query.tail if query.asks_head else query.head)
        return anchor, kg.relation_id(query.relation)
    except DataError as exc:
        raise DataError(f"{where}{exc}") from None
