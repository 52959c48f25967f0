"""Every entity as a negative: the limit that every sampler approaches.

Each positive ``(h, r, t)`` asks two queries, ``(h, r, ?)`` and ``(t, r^-1, ?)``, and each is
scored against all entities and trained with a cross-entropy towards its answer (1-vs-all, the
form ConvE and the LibKGE studies train with) instead of Eq. 2's binary cross-entropy over
sampled negatives. The queries go through the loss in blocks whose scores fit a memory budget,
so a step holds one block of ``rows x E`` scores at a time, as evaluation does: with a bilinear
decoder (DistMult, ComplEx) each block's gradients are computed as soon as its scores, and
kept instead of the scores; with the others each block's scores are computed again in the
backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
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
        heads, tails = step.positives[:, 0], step.positives[:, 2]
        relation_ids = step.positives[:, 1]
        relations = gather_rows(step.relations, relation_ids)
        anchors = gather_rows(step.entities, torch.cat([heads, tails]))
        query_relations = step.decoder.both_query_relations(relations)  # tail queries first
        answers = torch.cat([tails, heads])
        memory_elements = int(self.options.memory_mb * 2**20) // 4  # float32 scores
        rows = max(1, memory_elements // max(1, len(step.entities)))
        if isinstance(step.decoder, BilinearDecoder):
            queries = step.decoder.compose(anchors, query_relations)
            total = _DotCrossEntropy.apply(queries, step.entities, answers, rows)
            return total / max(1, len(answers))
        total = anchors.new_zeros(())
        # The scores hold no randomness, and checkpoint's saved random state costs megabytes
        # per block that stay until the backward pass: 7 GiB over one step at 100k entities.
        for block in range(0, len(answers), rows):
            part = slice(block, block + rows)
            total = total + checkpoint(
                _cross_entropy,
                step.decoder,
                anchors[part],
                query_relations[part],
                step.entities,
                answers[part],
                use_reentrant=False,
                preserve_rng_state=False,
            )
        return total / max(1, len(answers))

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Every entity, in id order, for every positive: shape (B, E)."""
        ids = torch.arange(self.num_entities, device=step.positives.device)
        return ids.expand(len(step.positives), -1)

    def pick(self, step: StepContext) -> tuple[BoolTensor, LongTensor, BoolTensor | None]:
        """Every entity as each positive's tail: shapes (B, E)."""
        shape = (len(step.positives), self.num_entities)
        tail_side = torch.zeros(shape, dtype=torch.bool, device=step.positives.device)
        return tail_side, self.draw(step, tail_side), None


class _DotCrossEntropy(torch.autograd.Function):
    """The summed cross-entropy of queries scored against every entity by their dot product:
    shapes (Q, d), (E, d), (Q,), rows -> scalar. Each block of ``rows`` queries turns its
    softmax into its gradients at once, so the backward pass only scales the (Q, d) and (E, d)
    gradients kept: three matrix products per block where recomputing the scores takes four,
    and one softmax pass."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        queries: Tensor,
        entities: Tensor,
        answers: LongTensor,
        rows: int,
    ) -> Tensor:
        grad_queries, grad_entities = torch.empty_like(queries), torch.zeros_like(entities)
        total = queries.new_zeros(())
        for start in range(0, len(queries), rows):
            block, answer = queries[start : start + rows], answers[start : start + rows]
            scores = block @ entities.T
            log_partition = torch.logsumexp(scores, 1)
            total += (log_partition - scores.gather(1, answer[:, None]).squeeze(1)).sum()
            # d loss / d scores: the softmax, less one at each answer.
            scores_grad = scores.sub_(log_partition[:, None]).exp_()
            scores_grad[torch.arange(len(answer), device=answer.device), answer] -= 1
            torch.mm(scores_grad, entities, out=grad_queries[start : start + rows])
            grad_entities.addmm_(scores_grad.T, block)
        ctx.save_for_backward(grad_queries, grad_entities)
        return total

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, Tensor, None, None]:
        grad_queries, grad_entities = ctx.saved_tensors
        return grad * grad_queries, grad * grad_entities, None, None


def _cross_entropy(
    decoder: Decoder, anchors: Tensor, relations: Tensor, entities: Tensor, answers: LongTensor
) -> Tensor:
    """The summed cross-entropy of tail queries against all entities: shapes (Q, d), (Q, d_r),
    (E, d), (Q,) -> scalar."""
    return F.cross_entropy(
        decoder.score_all_tails(anchors, relations, entities), answers, reduction="sum"
    )
