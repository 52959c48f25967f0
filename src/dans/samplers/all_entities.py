"""Every entity as a negative: the limit that every sampler approaches.

Each positive ``(h, r, t)`` asks two queries, ``(h, r, ?)`` and ``(t, r^-1, ?)``, and each is
scored against all entities and trained with a cross-entropy towards its answer (1-vs-all, the
form ConvE and the LibKGE studies train with) instead of Eq. 2's binary cross-entropy over
sampled negatives. A query that several positives of a step ask is scored once. The distinct
queries go through the loss in blocks whose scores fit a memory budget, so a step holds one
block of ``rows x E`` scores at a time, as evaluation does: with a bilinear decoder (DistMult,
ComplEx) each block's gradients are computed as soon as its scores, and kept instead of the
scores; with the others each block's scores are computed again in the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor
from torch.utils.checkpoint import checkpoint

from dans.models.decoders import BilinearDecoder, Decoder
from dans.models.gather import gather_rows
from dans.options import Options, option
from dans.samplers.base import NegativeSampler, StepContext


@dataclass(frozen=True)
class AllEntitiesOptions(Options):
    """The memory budget of the 1-vs-all loss."""

    prefix: ClassVar[str] = "all_entities_"

    memory_mb: float = option(
        16.0, "MB of scores (queries x entities) the loss holds at once", above=0.0
    )


class AllEntitiesSampler(NegativeSampler):
    """Every entity is a negative of every query (see the module docstring); ``--negatives``
    plays no part. :meth:`sample` lays the whole table out for each positive, for analyses on
    small graphs; training goes through :meth:`loss`."""

    name = "all-entities"
    options_type = AllEntitiesOptions
    draws_negatives = False
    touches_every_entity = True
    options: AllEntitiesOptions

    def loss(self, step: StepContext) -> Tensor:
        """The mean cross-entropy over the step's 2B queries; a scalar."""
        queries = _DistinctQueries.of(step)
        anchors = gather_rows(step.entities, queries.anchor_ids)
        relations = step.decoder.query_relations(
            gather_rows(step.relations, queries.relation_ids), queries.head_side
        )
        memory_elements = int(self.options.memory_mb * 2**20) // 4  # float32 scores
        rows = max(1, memory_elements // max(1, len(step.entities)))
        blocks = queries.blocks(rows)
        if isinstance(step.decoder, BilinearDecoder):
            composed = step.decoder.compose(anchors, relations)
            total = _DotCrossEntropy.apply(composed, step.entities, queries, blocks)
            return total / max(1, len(queries.answers))
        total = anchors.new_zeros(())
        for block, answered in blocks:
            # The scores hold no randomness, and checkpoint's saved random state costs
            # megabytes per block that stay until the backward pass: 7 GiB over one step at
            # 100k entities.
            total = total + checkpoint(
                _block_cross_entropy,
                step.decoder,
                anchors[block],
                relations[block],
                step.entities,
                queries.part(block, answered),
                use_reentrant=False,
                preserve_rng_state=False,
            )
        return total / max(1, len(queries.answers))

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Every entity, in id order, for every positive: shape (B, E)."""
        ids = torch.arange(self.num_entities, device=step.positives.device)
        return ids.expand(len(step.positives), -1)

    def pick(self, step: StepContext) -> tuple[BoolTensor, LongTensor, BoolTensor | None]:
        """Every entity as each positive's tail: shapes (B, E)."""
        shape = (len(step.positives), self.num_entities)
        tail_side = torch.zeros(shape, dtype=torch.bool, device=step.positives.device)
        return tail_side, self.draw(step, tail_side), None


@dataclass(frozen=True)
class _DistinctQueries:
    """The distinct queries of a step and the answers each is asked for.

    A query ``(anchor, relation, ?)`` that several positives ask (``(h, r, ?)`` of each
    ``(h, r, t_i)``) has one score row: its log-partition counts once per asker and each
    asker's answer is taken from the same row, so the loss is the one over every positive's
    own row at the cost of the distinct rows (the hubs of a graph ask many: a third of a
    NELL-995 batch's queries are repeats).

    ``anchor_ids``, ``relation_ids``, ``head_side``, ``counts``: shape (U,), the distinct queries
    (a head query asks the inverse of its relation) and how many positives ask each.
    ``owners``, ``answers``: shape (2B,), each positive's two queries' rows in the distinct
    ones and their answers, ordered by row so that a block of rows owns a run of answers.
    """

    anchor_ids: LongTensor
    relation_ids: LongTensor
    head_side: BoolTensor
    counts: LongTensor
    owners: LongTensor
    answers: LongTensor

    @classmethod
    def of(cls, step: StepContext) -> _DistinctQueries:
        heads, relation_ids, tails = step.positives.T
        num_entities, num_relations = len(step.entities), len(step.relations)
        # Tail queries first, then head queries, keyed by (side, relation, anchor).
        sided_relations = torch.cat([relation_ids, relation_ids + num_relations])
        keys = sided_relations * num_entities + torch.cat([heads, tails])
        distinct, owners, counts = torch.unique(keys, return_inverse=True, return_counts=True)
        order = torch.argsort(owners, stable=True)
        sided = distinct // num_entities
        return cls(
            anchor_ids=distinct % num_entities,
            relation_ids=sided % num_relations,
            head_side=sided >= num_relations,
            counts=counts,
            owners=owners[order],
            answers=torch.cat([tails, heads])[order],
        )

    def blocks(self, rows: int) -> list[tuple[slice, slice]]:
        """Blocks of at most ``rows`` distinct queries, each with the run of answers they own."""
        ends = [0, *self.counts.cumsum(0).tolist()]
        return [
            (slice(start, start + rows), slice(ends[start], ends[min(start + rows, len(ends) - 1)]))
            for start in range(0, len(self.counts), rows)
        ]

    def part(self, block: slice, answered: slice) -> tuple[LongTensor, LongTensor, LongTensor]:
        """A block's counts, and its answers' rows (counted from the block's first) and ids."""
        return self.counts[block], self.owners[answered] - block.start, self.answers[answered]


def _summed_cross_entropy(
    scores: Tensor, log_partition: Tensor, part: tuple[LongTensor, LongTensor, LongTensor]
) -> Tensor:
    """The summed cross-entropy of a block's answers: shapes (U, E), (U,), then the block's
    counts (U,), and its answers' rows (A,) and ids (A,) -> scalar."""
    counts, owners, answers = part
    answer_scores = scores.reshape(-1).index_select(0, owners * scores.shape[1] + answers)
    return (counts * log_partition).sum() - answer_scores.sum()


class _DotCrossEntropy(torch.autograd.Function):
    """The summed cross-entropy of distinct queries scored against every entity by their dot
    product: shapes (U, d), (E, d), then the queries' answers and blocks -> scalar. Each block
    turns its softmax into its gradients at once, so the backward pass only scales the (U, d)
    and (E, d) gradients kept: three matrix products per block where recomputing the scores
    takes four, and one softmax pass."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        queries: Tensor,
        entities: Tensor,
        distinct: _DistinctQueries,
        blocks: list[tuple[slice, slice]],
    ) -> Tensor:
        grad_queries, grad_entities = torch.empty_like(queries), torch.zeros_like(entities)
        total = queries.new_zeros(())
        for block, answered in blocks:
            counts, owners, answers = part = distinct.part(block, answered)
            scores = queries[block] @ entities.T
            log_partition = torch.logsumexp(scores, 1)
            total += _summed_cross_entropy(scores, log_partition, part)
            # d loss / d scores: the softmax times the query's askers, less one at each answer.
            scores_grad = scores.sub_(log_partition[:, None]).exp_().mul_(counts[:, None])
            scores_grad.index_put_((owners, answers), scores.new_tensor(-1.0), accumulate=True)
            torch.mm(scores_grad, entities, out=grad_queries[block])
            grad_entities.addmm_(scores_grad.T, queries[block])
        ctx.save_for_backward(grad_queries, grad_entities)
        return total

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, Tensor, None, None]:
        grad_queries, grad_entities = ctx.saved_tensors
        return grad * grad_queries, grad * grad_entities, None, None


def _block_cross_entropy(
    decoder: Decoder,
    anchors: Tensor,
    relations: Tensor,
    entities: Tensor,
    part: tuple[LongTensor, LongTensor, LongTensor],
) -> Tensor:
    """The summed cross-entropy of a block of distinct tail queries against all entities:
    shapes (U, d), (U, d_r), (E, d), then the block's answers -> scalar."""
    scores = decoder.score_all_tails(anchors, relations, entities)
    return _summed_cross_entropy(scores, torch.logsumexp(scores, 1), part)
