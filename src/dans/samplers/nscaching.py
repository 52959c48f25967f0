"""NSCaching: negatives drawn from small per-query caches of hard entities.

Zhang, Yao, Shao and Chen, "NSCaching: Simple and Efficient Negative Sampling for Knowledge Graph
Embedding", ICDE 2019. A tail cache per ``(h, r)`` and a head cache per ``(r, t)`` each hold
``N1`` entity ids. A negative that replaces the tail of ``(h, r, t)`` is drawn uniformly from the
cache of ``(h, r)``; one that replaces the head, from the cache of ``(r, t)``. After sampling, the
cache of every query in the batch is refreshed: ``N2`` uniformly random entities join its ``N1``,
the current model scores all ``N1 + N2``, and ``N1`` are kept, drawn without replacement in
proportion to ``exp(score / temperature)`` (importance sampling, the paper's default) or the
``N1`` highest-scored ("top").

Caches exist only for the queries of train triples: the key space ``E * R`` is far too large to
hold densely (3.4M keys for FB15k-237), and positives are train triples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.models.gather import block_rows, gather_rows
from dans.options import Options, option
from dans.samplers.base import Negatives, NegativeSampler, StepContext

NSCACHING_REFRESH = ("importance", "top")


@dataclass(frozen=True)
class NSCachingOptions(Options):
    prefix: ClassVar[str] = "nscaching_"

    cache_size: int = option(
        50, "entities cached per (h, r) and per (r, t) of train (N1)", minimum=1
    )
    candidates: int = option(
        50, "random entities offered to each cache at a refresh (N2)", minimum=1
    )
    refresh: str = option(
        "importance",
        "keep N1 of cache + candidates by importance sampling on softmax(score / T) "
        "(importance) or the N1 highest-scored (top)",
        choices=NSCACHING_REFRESH,
    )
    temperature: float = option(1.0, "softmax temperature T of the importance refresh", above=0.0)


class NSCachingSampler(NegativeSampler):
    """The paper's sampler; see the module docstring.

    ``cache_size``: ``N1``, entities cached per query; ``candidates``: ``N2``, random entities
    offered to each refreshed cache; ``refresh``: "importance" keeps ``N1`` of the ``N1 + N2``
    sampled without replacement from ``softmax(score / temperature)``, "top" keeps the ``N1``
    highest-scored. ``seed`` seeds the uniformly random initial caches.
    """

    name = "nscaching"
    scores_with_model = True
    ids_only_settings: ClassVar[dict[str, Any] | None] = {}
    options_type = NSCachingOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: NSCachingOptions) -> NSCachingSampler:
        return cls(
            context.num_entities,
            context.num_relations,
            context.num_negatives,
            context.train_triples,
            context.known_triples,
            context.filter_negatives,
            context.seed,
            options,
        )

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        num_negatives: int,
        train_triples: LongTensor,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        seed: int = 1,
        options: NSCachingOptions = NSCachingOptions(),
    ) -> None:
        """``train_triples``: shape (N, 3), the triples whose queries get a cache."""
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        if len(train_triples) == 0:
            raise ConfigError("NSCaching needs training triples to key its caches")
        self.num_relations = num_relations
        self.cache_size = options.cache_size
        self.candidates = options.candidates
        self.refresh_mode = options.refresh
        self.temperature = options.temperature
        heads, rels, tails = train_triples.cpu().long().unbind(1)
        # Sorted distinct query keys, encoded like KnownTriples (anchor * R + relation): a
        # query's cache row is its key's position, found by binary search. Rebuilt from train on
        # every construction, so they stay out of the state dict.
        self.register_buffer("tail_keys", torch.unique(heads * num_relations + rels), False)
        self.register_buffer("head_keys", torch.unique(tails * num_relations + rels), False)
        # Uniformly random initial caches, as in the authors' code.
        init = torch.Generator().manual_seed(seed)
        shape = (len(self.tail_keys), self.cache_size)
        self.register_buffer("tail_cache", torch.randint(num_entities, shape, generator=init))
        shape = (len(self.head_keys), self.cache_size)
        self.register_buffer("head_cache", torch.randint(num_entities, shape, generator=init))

    def rows(self, positives: LongTensor, head_side: bool) -> tuple[LongTensor, BoolTensor]:
        """Cache rows of the positives' queries, both shape (B,): the row (clamped into range)
        and whether the query has a cache at all. ``head_side`` looks up ``(r, t)`` keys,
        otherwise ``(h, r)``."""
        keys = self.head_keys if head_side else self.tail_keys
        anchors = positives[:, 2] if head_side else positives[:, 0]
        query = (anchors * self.num_relations + positives[:, 1]).to(keys.device)
        rows = torch.searchsorted(keys, query).clamp_max(len(keys) - 1)
        return rows, keys[rows] == query

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """A uniformly chosen entry of the replaced side's cache per negative, shape (B, K);
        a uniformly random entity where the query has no cache (not a train query)."""
        generator, positives = step.generator, step.positives
        device = generator.device
        shape = head_replaced.shape
        slots = torch.randint(self.cache_size, shape, generator=generator, device=device)
        uniform = torch.randint(self.num_entities, shape, generator=generator, device=device)
        tail_rows, tail_found = self.rows(positives, head_side=False)
        head_rows, head_found = self.rows(positives, head_side=True)
        head_replaced = head_replaced.to(self.tail_cache.device)
        slots = slots.to(self.tail_cache.device)
        ids = torch.where(
            head_replaced,
            self.head_cache[head_rows[:, None], slots],
            self.tail_cache[tail_rows[:, None], slots],
        )
        found = torch.where(head_replaced, head_found[:, None], tail_found[:, None])
        return torch.where(found, ids, uniform.to(ids.device)).to(device)

    def sample(self, step: StepContext) -> Negatives:
        """Negatives from the caches (the base class picks sides and filters), then a refresh of
        the batch's caches.

        The refresh follows sampling, as in the paper's Algorithm 2 and the authors' training
        loop (``neg_sample``, then ``update_cache``, then the model step): this batch's negatives
        come from the caches as they were, and the caches are refreshed with the current model,
        before its update. Refreshing in :meth:`update` would instead sample from caches
        already refreshed for this very batch.
        """
        negatives = super().sample(step)
        self.refresh(step.detached())
        return negatives

    @torch.no_grad()
    def refresh(self, step: StepContext) -> None:
        """Refresh the head and tail caches of the queries of the step's positives in place.

        Each distinct cached query is refreshed once, however many positives share it; queries
        without a cache are skipped. Both sides are scored in one batched computation.
        """
        generator = step.generator
        tail_rows, tail_found = self.rows(step.positives, head_side=False)
        head_rows, head_found = self.rows(step.positives, head_side=True)
        # Distinct rows: writing one row twice in a batch would be order-dependent on the GPU.
        tail_rows = torch.unique(tail_rows[tail_found])
        head_rows = torch.unique(head_rows[head_found])
        keys = torch.cat([self.tail_keys[tail_rows], self.head_keys[head_rows]])
        cached = torch.cat([self.tail_cache[tail_rows], self.head_cache[head_rows]])
        is_head = torch.arange(len(keys), device=keys.device) >= len(tail_rows)
        device = generator.device
        offered = torch.randint(
            self.num_entities, (len(keys), self.candidates), generator=generator, device=device
        )
        candidates = torch.cat([cached, offered.to(cached.device)], 1)
        on_model = step.entities.device
        logits = self.candidate_scores(step, keys.to(on_model), is_head.to(on_model), candidates)
        logits = logits / self.temperature
        # An entity offered twice (a cached one drawn again, or a repeat in the initial cache)
        # would take two slots: only its first copy competes, so the N1 kept are distinct
        # whenever N1 + N2 candidates hold N1 distinct entities.
        logits = logits.masked_fill(_repeats(candidates).to(logits.device), -torch.inf)
        if self.refresh_mode == "importance":
            # Gumbel top-k: the N1 largest of logits + Gumbel noise are a draw without
            # replacement in proportion to softmax(logits), like torch.multinomial in the
            # authors' code, but defined even where fewer than N1 candidates are distinct.
            uniform = torch.rand(logits.shape, generator=generator, device=device)
            gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
            logits = logits + gumbel.to(logits.device)
        kept = logits.topk(self.cache_size, dim=1).indices
        refreshed = candidates.gather(1, kept.to(candidates.device))
        self.tail_cache[tail_rows] = refreshed[: len(tail_rows)]
        self.head_cache[head_rows] = refreshed[len(tail_rows) :]

    def candidate_scores(
        self, step: StepContext, keys: LongTensor, is_head: BoolTensor, candidates: LongTensor
    ) -> Tensor:
        """Logits of each query with each of its candidates in the open slot, shape (Q, M).

        ``keys``: shape (Q,), ``anchor * R + relation``; ``is_head``: shape (Q,), True for a
        head query ``(c, r, anchor)`` and False for a tail query ``(anchor, r, c)``;
        ``candidates``: shape (Q, M). A head query is asked as a tail query with the inverse
        relation, so one call covers both sides, and each query is composed once for all its
        candidates (:meth:`~dans.models.decoders.Decoder.tails_scorer`).
        """
        entities, decoder = step.entities, step.decoder
        anchors = gather_rows(entities, keys // self.num_relations)
        relations = gather_rows(step.relations, keys % self.num_relations)
        queries = decoder.query_relations(relations, is_head)
        width = candidates.shape[1]
        # Blocks of queries whose N1 + N2 gathered candidate embeddings fill block_rows's budget.
        row_bytes = width * entities.shape[1] * entities.element_size()
        block = block_rows(row_bytes, entities.device)
        scores = [
            decoder.tails_scorer(a[:, None], q[:, None])(gather_rows(entities, c.to(a.device)))
            for a, q, c in zip(
                anchors.split(block), queries.split(block), candidates.split(block), strict=True
            )
        ]
        return torch.cat(scores) if scores else entities.new_zeros(0, width)


def _repeats(ids: LongTensor) -> BoolTensor:
    """shape (Q, M) -> (Q, M): True where the id already occurs earlier in its row."""
    ordered, order = ids.sort(dim=1, stable=True)
    repeated = torch.zeros_like(ids, dtype=torch.bool)
    return repeated.scatter_(1, order[:, 1:], ordered[:, 1:] == ordered[:, :-1])
