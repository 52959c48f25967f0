"""Decoders turn entity and relation embeddings into triple scores (logits)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import BoolTensor, LongTensor, Tensor, nn

from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.options import Options, option
from dans.registry import Registry

DECODERS: Registry[Decoder] = Registry("decoder")

# Elements of the (queries, entities, dim) block that the generic all-entity path holds at once,
# and on a CPU how many entities it spans. A CPU ranks with RotatE several times faster in
# blocks of 8 MB over 512 entities than in blocks of 64 MB over every entity (`python
# benchmarks/speed.py --sections rotate`): each block is allocated again and again, and the
# small ones stay in the allocator and in cache. An accelerator keeps the large blocks, which
# launch fewer kernels.
_BROADCAST_BUDGET = 1 << 24
_CPU_BROADCAST_BUDGET, _CPU_BLOCK_ENTITIES = 1 << 21, 512


class Decoder(nn.Module):
    """Scores triples from embeddings; owns the relation embeddings.

    Subclasses implement :meth:`score` (broadcasting), :meth:`compose` and :meth:`inverse`, and
    may override :meth:`score_all_tails` with a faster exact formula and :meth:`tails_scorer`
    with one that prepares the queries once. Head prediction is tail prediction with the
    inverse relation: ``score(h, r, t) == score(t, inverse(r), h)`` for every decoder here,
    which is also how samplers that replace heads condition on the tail (:meth:`query_relations`
    is the one place that turns a head query into a tail query).
    """

    name: ClassVar[str] = ""
    # The decoder's own settings (see :class:`~dans.samplers.base.NegativeSampler`), or None.
    options_type: ClassVar[type[Options] | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        DECODERS.register(cls)

    @classmethod
    def from_context(cls, context: BuildContext, options: Options | None) -> Decoder:
        """The decoder for ``context``'s relations and dimension; a subclass whose constructor
        takes more, or that has options, overrides this."""
        return cls(context.num_relations, context.dim)

    def __init__(self, num_relations: int, dim: int, relation_dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.relation_embeddings = nn.Parameter(torch.empty(num_relations, relation_dim or dim))
        nn.init.xavier_uniform_(self.relation_embeddings)

    def relations(self) -> Tensor:
        """shape: (R, d_r), the relation representation passed to :meth:`score`."""
        return self.relation_embeddings

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """Logits of triples. Broadcasting shapes: (..., d), (..., d_r), (..., d) -> (...)."""
        raise NotImplementedError

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        """The anchor carried along the relation, in entity space: shapes (..., d), (..., d_r) ->
        (..., d).

        This is the element-wise product ``e_h * e_r`` of the decoder's own algebra (real for
        DistMult, complex for ComplEx and RotatE; a translation for TransE): the vector that
        DANS's relation pathway is centred on (Eq. 5).
        """
        raise NotImplementedError

    def inverse(self, relations: Tensor) -> Tensor:
        """shape: (..., d_r) -> (..., d_r), such that score(h, r, t) == score(t, inverse(r), h)."""
        raise NotImplementedError

    def query_relations(self, relations: Tensor, head_side: Tensor) -> Tensor:
        """The relation of each query asked as a tail query: ``relations`` where the tail is
        asked for, their inverse where the head is (``head_side`` true), so that the query
        ``(t, r, ?)`` of a head is ``(anchor, query_relation, candidate)`` like any other.
        Broadcasting shapes: (..., d_r), (...) -> (..., d_r)."""
        return torch.where(head_side[..., None].bool(), self.inverse(relations), relations)

    def both_query_relations(self, relations: Tensor) -> Tensor:
        """:meth:`query_relations` of every relation asked both ways: the tail queries' first,
        then the head queries'. shape: (N, d_r) -> (2N, d_r)."""
        return torch.cat([relations, self.inverse(relations)])

    def tails_scorer(self, heads: Tensor, relations: Tensor) -> Callable[[Tensor], Tensor]:
        """:meth:`score` of fixed queries as a function of their tails, with what depends on
        the queries alone done once: ``tails_scorer(h, r)(t) == score(h, r, t)``, for a chain
        that scores the same queries at each of its steps, or a query's many candidates.
        Broadcasting shapes: (..., d), (..., d_r), then tails (..., d) -> (...)."""
        return functools.partial(self.score, heads, relations)

    def score_all_tails(self, heads: Tensor, relations: Tensor, entities: Tensor) -> Tensor:
        """Score every entity as the tail. shapes: (Q, d), (Q, d_r), (E, d) -> (Q, E).

        Broadcasts :meth:`score` over blocks of queries and entities, of at most
        ``_BROADCAST_BUDGET`` (on a CPU ``_CPU_BROADCAST_BUDGET``) elements of (Q, E, d)."""
        if not len(heads) or not len(entities):
            return heads.new_zeros(len(heads), len(entities))
        cpu = entities.device.type == "cpu"
        columns = min(len(entities), _CPU_BLOCK_ENTITIES) if cpu else len(entities)
        budget = _CPU_BROADCAST_BUDGET if cpu else _BROADCAST_BUDGET
        rows = max(1, budget // (columns * entities.shape[1]))
        return torch.cat(
            [
                torch.cat(
                    [self.score(h[:, None], r[:, None], e[None]) for e in entities.split(columns)],
                    1,
                )
                for h, r in zip(heads.split(rows), relations.split(rows), strict=True)
            ]
        )

    def score_corrupted(
        self,
        heads: Tensor,
        relations: Tensor,
        tails: Tensor,
        head_replaced: BoolTensor,
        candidates: Tensor,
    ) -> Tensor:
        """Logits of triples with the head (where ``head_replaced``) or the tail replaced by
        ``candidates``. shapes: (B, d), (B, d_r), (B, d), (B, K), (B, K, d) -> (B, K).

        Head replacement scores ``(t, inverse(r), candidate)``, so every corrupted triple is a
        tail query.
        """
        anchors = torch.where(head_replaced[..., None], tails[:, None], heads[:, None])
        return self.score(
            anchors, self.query_relations(relations[:, None], head_replaced), candidates
        )

    def both_queries(self, heads: Tensor, relations: Tensor, tails: Tensor, dim: int) -> Tensor:
        """Each positive's tail query ``compose(h, r)`` and head query ``compose(t, inverse(r))``,
        stacked along ``dim``. shapes: (B, d), (B, d_r), (B, d) -> (B, 2, d) for ``dim=1``."""
        return torch.stack(
            [self.compose(heads, relations), self.compose(tails, self.inverse(relations))], dim
        )

    def score_all_heads(self, relations: Tensor, tails: Tensor, entities: Tensor) -> Tensor:
        """Score every entity as the head. shapes: (Q, d_r), (Q, d), (E, d) -> (Q, E)."""
        return self.score_all_tails(tails, self.inverse(relations), entities)

    def penalty(self, relations: Tensor) -> Tensor:
        """The relations' share of the L2 penalty."""
        return relations.pow(2).mean()


class BilinearDecoder(Decoder):
    """A decoder whose score is a dot product with the composed query:
    ``score(h, r, t) == compose(h, r) . t``, so a block of candidates is one matrix product."""

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        return self.tails_scorer(heads, relations)(tails)

    def tails_scorer(self, heads: Tensor, relations: Tensor) -> Callable[[Tensor], Tensor]:
        composed = self.compose(heads, relations)
        return lambda tails: (composed * tails).sum(-1)

    def score_all_tails(self, heads: Tensor, relations: Tensor, entities: Tensor) -> Tensor:
        return self.compose(heads, relations) @ entities.T

    def score_corrupted(
        self,
        heads: Tensor,
        relations: Tensor,
        tails: Tensor,
        head_replaced: BoolTensor,
        candidates: Tensor,
    ) -> Tensor:
        # Each positive's two queries, scored against its K candidates in one batched product:
        # no (B, K, d) query tensors to build and differentiate.
        both = torch.bmm(candidates, self.both_queries(heads, relations, tails, -1))
        return both.gather(2, head_replaced.long()[..., None]).squeeze(-1)

    def score_corrupted_ids(
        self,
        heads: Tensor,
        relations: Tensor,
        tails: Tensor,
        head_replaced: BoolTensor,
        ids: LongTensor,
        entities: Tensor,
    ) -> Tensor:
        """:meth:`score_corrupted` with the candidates given as rows ``ids`` of ``entities``:
        each positive's two queries against every entity in one matrix product, then the K
        picked. shapes: (B, d), (B, d_r), (B, d), (B, K), (B, K), (E, d) -> (B, K)."""
        scores = self.both_queries(heads, relations, tails, 1) @ entities.T  # (B, 2, E)
        picked = head_replaced.long() * len(entities) + ids
        return scores.view(len(ids), -1).gather(1, picked)

    def score_corrupted_shared(
        self,
        heads: Tensor,
        relations: Tensor,
        tails: Tensor,
        head_replaced: BoolTensor,
        drawn: Tensor,
        shared_by: int,
    ) -> Tensor:
        """:meth:`score_corrupted` where each ``shared_by`` consecutive positives share one draw
        of K candidates, ``drawn``: every query of a group against its K candidates in one
        batched product. shapes: (B, d), (B, d_r), (B, d), (B, K), (G, K, d) -> (B, K), where
        G = ceil(B / shared_by)."""
        groups, k, _ = drawn.shape
        queries = self.both_queries(heads, relations, tails, 1)  # (B, 2, d)
        # The last group filled up with zero queries, whose scores are cut off again.
        padded = F.pad(queries, (0, 0, 0, 0, 0, groups * shared_by - len(heads)))
        grouped = padded.view(groups, 2 * shared_by, -1)
        scores = torch.bmm(grouped, drawn.transpose(1, 2)).view(-1, 2, k)[: len(heads)]
        return scores.gather(1, head_replaced.long()[:, None, :]).squeeze(1)


class DistMult(BilinearDecoder):
    """``<h, r, t>`` (Yang et al., 2015), the paper's Eq. 3 before the sigmoid."""

    name = "distmult"

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        return anchors * relations

    def inverse(self, relations: Tensor) -> Tensor:
        return relations


class ComplEx(BilinearDecoder):
    """``Re(<h, r, conj(t)>)`` (Trouillon et al., 2016); the first half of a vector is real."""

    name = "complex"

    def __init__(self, num_relations: int, dim: int) -> None:
        if dim % 2:
            raise ConfigError(f"the complex decoder needs an even --dim, got {dim}")
        super().__init__(num_relations, dim)

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        return complex_product(anchors, *relations.chunk(2, -1))

    def inverse(self, relations: Tensor) -> Tensor:
        r_re, r_im = relations.chunk(2, -1)
        return torch.cat([r_re, -r_im], -1)


@dataclass(frozen=True)
class DistanceOptions(Options):
    margin: float = option(6.0, "logit offset of the distance decoders (rotate, transe)")


class DistanceDecoder(Decoder):
    """A decoder whose score is ``margin - distance(compose(h, r) - t)``; ``margin`` centres the
    logits for the cross-entropy loss. Subclasses implement :meth:`distance`."""

    options_type = DistanceOptions

    def __init__(
        self,
        num_relations: int,
        dim: int,
        options: DistanceOptions = DistanceOptions(),
        relation_dim: int | None = None,
    ) -> None:
        super().__init__(num_relations, dim, relation_dim)
        self.margin = options.margin

    @classmethod
    def from_context(cls, context: BuildContext, options: DistanceOptions) -> DistanceDecoder:
        return cls(context.num_relations, context.dim, options)

    def distance(self, differences: Tensor) -> Tensor:
        """shape: (..., d) -> (...)."""
        raise NotImplementedError

    def score(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        return self.tails_scorer(heads, relations)(tails)

    def tails_scorer(self, heads: Tensor, relations: Tensor) -> Callable[[Tensor], Tensor]:
        composed = self.compose(heads, relations)
        return lambda tails: self.margin - self.distance(composed - tails)

    def score_corrupted(
        self,
        heads: Tensor,
        relations: Tensor,
        tails: Tensor,
        head_replaced: BoolTensor,
        candidates: Tensor,
    ) -> Tensor:
        # Each positive's two queries are composed once and gathered per negative, rather than
        # composed for every one of its K negatives (RotatE's rotation takes a cosine and a sine).
        queries = self.both_queries(heads, relations, tails, 1)
        return self.margin - self.corrupted_distances(queries, candidates, head_replaced)

    def corrupted_distances(
        self, queries: Tensor, candidates: Tensor, head_replaced: BoolTensor
    ) -> Tensor:
        """The distance from each positive's query on the side that each candidate replaces to
        that candidate. shapes: (B, 2, d) (tail query, head query), (B, K, d), (B, K) -> (B, K).
        """
        return self.distance(_query_per_candidate(queries, head_replaced) - candidates)


class RotatE(DistanceDecoder):
    """``margin - sum_i |h_i r_i - t_i|``, complex, with unit-modulus ``r`` (Sun et al., 2019).

    Relations are stored as phases, shape (R, d / 2).
    """

    name = "rotate"

    def __init__(
        self, num_relations: int, dim: int, options: DistanceOptions = DistanceOptions()
    ) -> None:
        if dim % 2:
            raise ConfigError(f"the rotate decoder needs an even --dim, got {dim}")
        super().__init__(num_relations, dim, options, relation_dim=dim // 2)
        nn.init.uniform_(self.relation_embeddings, -torch.pi, torch.pi)

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        return complex_product(anchors, torch.cos(relations), torch.sin(relations))

    def distance(self, differences: Tensor) -> Tensor:
        return _moduli(differences).sum(-1)

    def corrupted_distances(
        self, queries: Tensor, candidates: Tensor, head_replaced: BoolTensor
    ) -> Tensor:
        candidates = candidates.expand(*head_replaced.shape, -1)
        return _CorruptedRotatEDistances.apply(queries, candidates, head_replaced)

    def inverse(self, relations: Tensor) -> Tensor:
        return -relations

    def penalty(self, relations: Tensor) -> Tensor:
        # Phases have no scale to keep in check.
        return relations.new_zeros(())


def _query_per_candidate(queries: Tensor, head_replaced: BoolTensor) -> Tensor:
    """Each positive's tail or head query, the one on the side each candidate replaces.
    shapes: (B, 2, d) (tail query, head query), (B, K) -> (B, K, d)."""
    index = head_replaced.long()[..., None].expand(-1, -1, queries.shape[-1])
    return queries.gather(1, index)


def _moduli(differences: Tensor) -> Tensor:
    """The modulus of each complex coordinate, real halves first, in one buffer written in
    place; 1e-12 under the root keeps its gradient finite at zero. shape: (..., d) -> (..., d / 2).
    """
    real, imaginary = differences.chunk(2, -1)
    return (real * real).addcmul_(imaginary, imaginary).add_(1e-12).sqrt_()


class _CorruptedRotatEDistances(torch.autograd.Function):
    """RotatE's :meth:`~DistanceDecoder.corrupted_distances`. shapes: queries (B, 2, d) (tail
    query, head query), candidates (B, K, d), head_replaced (B, K) -> (B, K).

    Its backward is written out: it keeps the differences and the moduli alone, and sums each
    query's gradient in one batched product, where autograd keeps and walks about ten (B, K, d)
    intermediates and scatters into the queries (`python benchmarks/speed.py --sections rotate`
    times the two).
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        queries: Tensor,
        candidates: Tensor,
        head_replaced: BoolTensor,
    ) -> Tensor:
        differences = _query_per_candidate(queries, head_replaced).sub_(candidates)
        moduli = _moduli(differences)
        ctx.save_for_backward(differences, moduli, head_replaced)
        return moduli.sum(-1)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, Tensor, None]:
        differences, moduli, head_replaced = ctx.saved_tensors
        # d|z| / dz = z / |z|, for the real and the imaginary part of each coordinate.
        scale = grad[..., None] / moduli
        grad_differences = differences * torch.cat([scale, scale], -1)
        # (B, 2, K) @ (B, K, d): each query gathers the gradient of the candidates it answers.
        sides = torch.stack([~head_replaced, head_replaced], 1).to(grad_differences.dtype)
        grad_queries = torch.bmm(sides, grad_differences)
        return grad_queries, grad_differences.neg_(), None


class TransE(DistanceDecoder):
    """``margin - ||h + r - t||_2`` (Bordes et al., 2013)."""

    name = "transe"

    def compose(self, anchors: Tensor, relations: Tensor) -> Tensor:
        return anchors + relations

    def distance(self, differences: Tensor) -> Tensor:
        return torch.linalg.vector_norm(differences, dim=-1)

    def inverse(self, relations: Tensor) -> Tensor:
        return -relations

    def score_all_tails(self, heads: Tensor, relations: Tensor, entities: Tensor) -> Tensor:
        # Exact squared distances from one matrix product, then the same formula as score().
        queries = self.compose(heads, relations)
        squared = (
            queries.pow(2).sum(-1, keepdim=True)
            - 2 * queries @ entities.T
            + entities.pow(2).sum(-1)[None]
        )
        return self.margin - squared.clamp_min(0).sqrt()


def complex_product(vectors: Tensor, real: Tensor, imaginary: Tensor) -> Tensor:
    """Element-wise complex product of ``vectors`` (..., d), real half first, with
    ``real + i * imaginary`` (..., d / 2) -> (..., d)."""
    v_re, v_im = vectors.chunk(2, -1)
    return torch.cat([v_re * real - v_im * imaginary, v_re * imaginary + v_im * real], -1)
