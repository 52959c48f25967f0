"""Filtered, tie-aware ranks of true answers against all entities, or against a sample of
them, vectorised and chunked."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.models.decoders import Decoder

# Scores held at once while ranking, queries x entities. Small on purpose: the passes that count
# ranks then find more of the block in the CPU's cache after the matrix product (docs/results:
# WN18RR evaluation took 0.96 s with 256 MB blocks against 0.71 s with 16 MB ones).
DEFAULT_MEMORY_MB = 16
DEFAULT_MEMORY_ELEMENTS = DEFAULT_MEMORY_MB * 2**20 // 4  # float32


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

    @classmethod
    def joined(cls, better: list[Tensor], equal: list[Tensor], device: torch.device) -> Ranks:
        """The counts of blocks of queries, in order, as one :class:`Ranks`."""
        if not better:
            empty = torch.zeros(0, device=device)
            return cls(empty, empty)
        return cls(torch.cat(better).double(), torch.cat(equal).double())

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
    against the rest (better: ``>``, equal: ``==``). Triples that ask the same query (anchor and
    relation) share its row of scores, computed once: a quarter of NELL-995's validation
    queries and over two fifths of FB15k-237's repeat another. Blocks of triples, in the order of
    their queries, hold at most ``memory_elements / E`` rows of scores (at least one), their
    distinct queries' and their own together.
    """
    anchor_col, target_col = (2, 0) if predict_head else (0, 2)
    triples = triples.to(entities.device)
    queries, query_of = torch.unique(triples[:, [anchor_col, 1]], dim=0, return_inverse=True)
    rows = max(1, memory_elements // max(1, len(entities)))
    if len(queries) < len(triples):
        rows = max(1, rows // 2)  # a block's distinct queries' scores, then its triples' rows
    # Capped at the query count: split() takes at most a 64-bit count, and more is pointless.
    rows = min(max(1, len(triples)), rows)

    def score(asked: LongTensor) -> Tensor:
        """shape (n, 2) of (anchor, relation) -> (n, E)."""
        anchors, rels = entities[asked[:, 0]], relations[asked[:, 1]]
        if predict_head:
            return decoder.score_all_heads(rels, anchors, entities)
        return decoder.score_all_tails(anchors, rels, entities)

    def block_scores(block_queries: LongTensor) -> Tensor:
        """The rows of scores of a block's triples, given their queries in order, (n,) -> (n, E)."""
        distinct, local = torch.unique_consecutive(block_queries, return_inverse=True)
        scores = score(queries[distinct])
        return scores if len(distinct) == len(block_queries) else scores[local]

    def answers(block: LongTensor) -> tuple[LongTensor, LongTensor]:
        query_index, entity = known.answers(block[:, anchor_col], block[:, 1], predict_head)
        return query_index.to(entities.device), entity.to(entities.device)

    better = torch.zeros(len(triples), dtype=torch.long, device=entities.device)
    equal = torch.zeros_like(better)
    for positions in torch.argsort(query_of, stable=True).split(rows):
        block, block_queries = triples[positions], query_of[positions]
        targets = block[:, target_col]
        block_better, block_equal, unsure = _count_by_sign(
            block_scores(block_queries), targets, *answers(block)
        )
        if unsure.any():
            # Rare: a NaN or infinite score made a difference NaN; count those rows exactly.
            redo = unsure.nonzero().squeeze(1)
            exact = _count_by_comparison(
                block_scores(block_queries[redo]), targets[redo], *answers(block[redo])
            )
            block_better[redo], block_equal[redo] = exact
        better[positions], equal[positions] = block_better, block_equal
    return Ranks(better.double(), equal.double())


@torch.no_grad()
def rank_against_sample(
    triples: LongTensor,
    entities: Tensor,
    relations: Tensor,
    decoder: Decoder,
    known: KnownTriples,
    predict_head: bool,
    candidates: int,
    generator: torch.Generator,
    memory_elements: int = DEFAULT_MEMORY_ELEMENTS,
) -> Ranks:
    """Rank each triple's true tail (or head) among ``candidates`` entities drawn uniformly for
    it (with replacement), in the filtered setting: a drawn entity that forms a known-true
    triple, the true answer among them, is left out. The sampled protocol of large benchmarks
    (OGB's wikikg2 ranks against 1,000 drawn negatives): its ranks are at most
    ``candidates + 1``, and its metrics are higher than the full ranking's, not comparable with
    them. Shapes as :func:`rank_triples`; queries go in blocks of ``memory_elements /
    (candidates x d)`` rows, which bounds the rows gathered at once."""
    anchor_col, target_col = (2, 0) if predict_head else (0, 2)
    width = max(1, candidates * entities.shape[1])
    rows = min(max(1, len(triples)), max(1, memory_elements // width))
    better, equal = [], []
    for block in triples.to(entities.device).split(rows):
        drawn = torch.randint(
            len(entities), (len(block), candidates), generator=generator, device=generator.device
        ).to(entities.device)
        candidate_triples = block[:, None, :].repeat(1, candidates, 1)
        candidate_triples[:, :, target_col] = drawn
        kept = ~known.contains(candidate_triples)
        anchors, rels = entities[block[:, anchor_col]], relations[block[:, 1]]
        if predict_head:
            scores = decoder.score(entities[drawn], rels[:, None], anchors[:, None])
        else:
            scores = decoder.score(anchors[:, None], rels[:, None], entities[drawn])
        target = decoder.score(entities[block[:, 0]], rels, entities[block[:, 2]]).nan_to_num(
            nan=-torch.inf
        )[:, None]
        scores = scores.nan_to_num(nan=-torch.inf)
        better.append(((scores > target) & kept).sum(1))
        equal.append(((scores == target) & kept).sum(1))
    return Ranks.joined(better, equal, entities.device)


def _count_by_sign(
    scores: Tensor, targets: LongTensor, query_index: LongTensor, answers: LongTensor
) -> tuple[Tensor, Tensor, torch.BoolTensor]:
    """Better and equal counts per query from the signs of score differences, and which queries
    this could not count (a NaN difference in their row). All returned shapes (Q,).

    ``scores``: shape (Q, E), overwritten. ``(query_index, answers)``: the filtered coordinates,
    the targets among them. Two float sums over the signs replace two comparison-and-count passes,
    which cost several times more on the CPU: with s the signs of unfiltered candidates,
    ``sum(s) = better - worse`` and ``sum(|s|) = better + worse``. Sums of +-1 are exact in
    float32 below 2**24 entities. ``x - t`` is zero only when ``x == t`` (IEEE gradual underflow),
    so ties are exact too.
    """
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    # A NaN target ranks below every candidate: it compares as -inf.
    target_scores = scores.gather(1, targets[:, None]).nan_to_num_(nan=-torch.inf)
    differences = scores.sub_(target_scores)
    # torch.sign maps NaN to 0, a tie; a NaN difference (NaN score, or inf - inf) makes its row's
    # sum NaN, and that row is left to the exact path.
    unsure = differences.sum(1).isnan()
    signs = differences.sign_()
    # Filtered candidates (the target too) count as worse: neither better nor equal.
    signs[query_index, answers] = -1.0
    net = signs.sum(1)
    unequal = signs.abs_().sum(1)
    better = ((unequal + net) / 2).long()
    return better, scores.shape[1] - unequal.long(), unsure


def _count_by_comparison(
    scores: Tensor, targets: LongTensor, query_index: LongTensor, answers: LongTensor
) -> tuple[Tensor, Tensor]:
    """Better and equal counts per query by comparing every score with the target's, shape (Q,);
    correct for NaN and infinite scores. Arguments as :func:`_count_by_sign`."""
    # NaN compares false to everything and would rank first: count it as the lowest score.
    scores = scores.nan_to_num_(nan=-torch.inf)
    target_scores = scores.gather(1, targets[:, None])
    # Masks every known answer, the target too, so the target is not counted as its own tie.
    # NaN, not -inf: a masked entry must compare false even to a target that scored -inf
    # (or NaN, mapped to -inf above), or the filtered answers would count as its ties.
    scores[query_index, answers] = torch.nan
    return (scores > target_scores).sum(1), (scores == target_scores).sum(1)
