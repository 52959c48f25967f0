"""Snap vectors to their nearest real entities that do not complete a known-true triple."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import BoolTensor, LongTensor, Tensor

from dans.data.graph import KnownTriples

# Distances held at once: vectors x entities (16 Mi floats, 64 MB).
SNAP_MEMORY_ELEMENTS = 1 << 24


@torch.no_grad()
def nearest_allowed(
    vectors: Tensor,
    anchors: LongTensor,
    relations: LongTensor,
    head_replaced: BoolTensor,
    entities: Tensor,
    known: KnownTriples,
    k: int = 1,
    memory_elements: int = SNAP_MEMORY_ELEMENTS,
) -> tuple[LongTensor, Tensor]:
    """The ``k`` entities nearest each vector (Euclidean) that are allowed in its query's slot.

    Vector ``i`` replaces the head (``head_replaced[i]``) or the tail of a query whose kept entity
    is ``anchors[i]`` and relation ``relations[i]``; an entity is allowed when the triple it forms
    is not in ``known``. Shapes: vectors (Q, d); anchors, relations, head_replaced (Q,);
    entities (E, d). Returns ids (Q, k) nearest first and their distances (Q, k), which are
    ``inf`` where fewer than ``k`` entities are allowed. Vectors are processed in blocks of at
    most ``memory_elements / E`` rows.
    """
    ids, distances = [], []
    for block, squared in _squared_distances(vectors, entities, memory_elements):
        for predict_head in (False, True):
            members = (head_replaced[block] == predict_head).nonzero().squeeze(1)
            query_index, answers = known.answers(
                anchors[block][members], relations[block][members], predict_head
            )
            squared[members[query_index.to(members.device)], answers.to(members.device)] = torch.inf
        nearest, order = squared.topk(k, dim=1, largest=False)
        ids.append(order)
        distances.append(nearest.sqrt())
    if not ids:
        return anchors.new_zeros(0, k), vectors.new_zeros(0, k)
    return torch.cat(ids), torch.cat(distances)


@torch.no_grad()
def nearest_entities(
    vectors: Tensor, entities: Tensor, memory_elements: int = SNAP_MEMORY_ELEMENTS
) -> LongTensor:
    """The entity nearest each vector (Euclidean), allowed or not: (Q, d) -> ids (Q,)."""
    ids = [
        squared.argmin(1) for _, squared in _squared_distances(vectors, entities, memory_elements)
    ]
    return torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long, device=vectors.device)


def _squared_distances(
    vectors: Tensor, entities: Tensor, memory_elements: int
) -> Iterator[tuple[slice, Tensor]]:
    """Squared distances from blocks of at most ``memory_elements / E`` vectors to every entity:
    yields each block's rows and its distances, shape (rows, E)."""
    rows = max(1, memory_elements // max(1, len(entities)))
    squared_norms = entities.pow(2).sum(-1)
    for start in range(0, len(vectors), rows):
        block = slice(start, start + rows)
        squared = torch.addmm(squared_norms, vectors[block], entities.T, alpha=-2)
        yield block, (squared + vectors[block].pow(2).sum(-1, keepdim=True)).clamp_min_(0)
