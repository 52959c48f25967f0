"""Filtered, tie-aware ranks of true answers against all entities, vectorised and chunked."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.models.decoders import Decoder

# Scores held at once while ranking: queries x entities (64 Mi floats, 256 MB).
DEFAULT_MEMORY_ELEMENTS = 1 << 26


@dataclass
class Ranks:
    """Per-query counts from which every tie policy's rank follows. All shapes (Q,)."""

    better: Tensor
    equal: Tensor

    @property
    def optimistic(self) -> Tensor:
        return 1.0 + self.better

    @property
    def pessimistic(self) -> Tensor:
        return 1.0 + self.better + self.equal

    @property
    def realistic(self) -> Tensor:
        """The expected rank when ties are broken at random."""
        return 1.0 + self.better + self.equal / 2.0

    def select(self, ties: str) -> Tensor:
        if ties not in ("realistic", "optimistic", "pessimistic"):
            raise ValueError(f"unknown tie policy {ties!r}")
        return getattr(self, ties)


@torch.no_grad()
def rank_triples(
    triples: LongTensor,
    entities: Tensor,
    relations: Tensor,
    decoder: Decoder,
    known: KnownTriples,
    predict_head: bool,
    memory_elements: int = DEFAULT_MEMORY_ELEMENTS,
) -> Ranks:
    """Rank each triple's true tail (or head) among all entities, in the filtered setting.

    ``triples``: shape (Q, 3); ``entities``: (E, d); ``relations``: (R, d_r). Every other entity
    that forms a known-true triple is removed before counting; the true answer itself is compared
    against the rest with ``>`` (better) and ``==`` (equal). Queries are processed in blocks of at
    most ``memory_elements / E`` rows.
    """
    num_entities = len(entities)
    rows = max(1, memory_elements // max(1, num_entities))
    better, equal = [], []
    for block in triples.split(rows):
        block = block.to(entities.device)
        anchor_col, target_col = (2, 0) if predict_head else (0, 2)
        anchors, rels, targets = block[:, anchor_col], block[:, 1], block[:, target_col]
        if predict_head:
            scores = decoder.score_all_heads(relations[rels], entities[anchors], entities)
        else:
            scores = decoder.score_all_tails(entities[anchors], relations[rels], entities)
        # NaN compares false to everything and would rank first: count it as the lowest score.
        scores = scores.nan_to_num_(nan=-torch.inf)
        target_scores = scores.gather(1, targets[:, None])
        query_index, answers = known.answers(anchors, rels, predict_head)
        # Masks every known answer, the target too, so the target is not counted as its own tie.
        # NaN, not -inf: a masked entry must compare false even to a target that scored -inf
        # (or NaN, mapped to -inf above), or the filtered answers would count as its ties.
        scores[query_index.to(scores.device), answers.to(scores.device)] = torch.nan
        better.append((scores > target_scores).sum(1))
        equal.append((scores == target_scores).sum(1))
    if not better:
        empty = torch.zeros(0, device=entities.device)
        return Ranks(empty, empty)
    return Ranks(torch.cat(better).double(), torch.cat(equal).double())
