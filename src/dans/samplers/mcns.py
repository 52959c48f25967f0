"""MCNS: Markov chain Monte Carlo Negative Sampling (Yang et al., KDD 2020).

The paper's "Understanding Negative Sampling in Graph Representation Learning" shows that the
negative distribution should be positively but sub-linearly correlated with the positive one,
``p_n(c | q) ∝ p_d(c | q) ** alpha`` with ``0 < alpha < 1``. Here ``p_d`` is the current model's
own view of a query ``q``: ``p_d(c | q) ∝ exp(score(q, c))``, so the target of a query is
``exp(alpha * score)`` over all entities (the paper's self-contrast approximation, with the
decoder's logit in place of the inner product). Normalising it would cost a score per entity per
query, so negatives are drawn by Metropolis-Hastings, which needs only score differences.

The proposal mixes, as the paper does, a uniform move (probability ``uniform_share``) and a move to
a uniformly chosen neighbour of the current state in the undirected entity graph of the train
triples; an entity without neighbours makes a uniform move instead. The proposal is not symmetric
(a hub is proposed from each of its many neighbours), so the acceptance ratio carries
``q(x | y) / q(y | x)`` with the mixture's full density.

Chains: one per (positive, side) in a batch, both sides run for every positive. A chain starts
from the state that the last chain of the same anchor and side ended in (buffer ``states``,
shape (2, E): row 0 tail-side chains keyed by the head, row 1 head-side chains keyed by the tail),
so chains continue across mini-batches as the paper's DFS order continues one node's chain into the
next. It takes ``burn_in`` steps, then its next ``K`` consecutive states are the candidates for
that side; each negative takes the candidate of its side and column.

Defaults follow the authors' code (THUDM/MCNS): ``alpha = 0.25`` (``get_probs`` raises the
affinity to the power 0.25), ``uniform_share = 0.5`` and ``burn_in = 10`` (``N_steps``). Their
code differs in ways not kept here: the target is ``sigmoid(affinity ** 0.25)`` rather than a
power of a probability; the neighbour move picks among 100 nodes found by a DFS from the current
node; one coin chooses the move and one uniform number decides acceptance for the whole batch;
and each positive gets one negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.models.context import BuildContext
from dans.models.decoders import Decoder
from dans.models.gather import gather_rows
from dans.options import Options, option
from dans.samplers.base import NegativeSampler, StepContext

# Rows of the ``states`` buffer: chains replacing the tail (anchored at the head) and the head
# (anchored at the tail), matching ``head_replaced`` False and True.
TAIL, HEAD = 0, 1


@dataclass(frozen=True)
class MCNSOptions(Options):
    prefix: ClassVar[str] = "mcns_"

    alpha: float = option(
        0.25,
        "negatives drawn in proportion to exp(alpha * score); 0 is uniform, 1 the model's own "
        "distribution",
        minimum=0.0,
    )
    # Without uniform moves a chain cannot leave a connected component.
    uniform_share: float = option(
        0.5,
        "chance that a chain step proposes a uniform entity rather than a neighbour",
        above=0.0,
        maximum=1.0,
    )
    burn_in: int = option(
        10, "Metropolis-Hastings steps before a chain's states are used", minimum=0
    )


class MCNSSampler(NegativeSampler):
    """Negatives drawn by Metropolis-Hastings from ``exp(alpha * score)``; see the module docstring.

    ``alpha``: exponent of the sub-linear correlation (0 gives uniform negatives, 1 the model's
    own distribution). ``uniform_share``: probability of a uniform rather than a neighbour move.
    ``burn_in``: Metropolis-Hastings steps before a chain's states are used.
    """

    name = "mcns"
    scores_with_model = True
    needs_algebra = True
    ids_only_settings: ClassVar[dict[str, Any] | None] = {}
    options_type = MCNSOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: MCNSOptions) -> MCNSSampler:
        return cls(
            context.num_entities,
            context.num_negatives,
            context.train_triples,
            context.known_triples,
            context.filter_negatives,
            options,
        )

    def __init__(
        self,
        num_entities: int,
        num_negatives: int,
        train_triples: LongTensor,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        options: MCNSOptions = MCNSOptions(),
    ) -> None:
        """``train_triples``: shape (N, 3), whose heads and tails make the neighbour graph."""
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        self.alpha = options.alpha
        self.uniform_share = options.uniform_share
        self.burn_in = options.burn_in
        offsets, neighbours = neighbour_lists(train_triples, num_entities)
        # Rebuilt from train rather than checkpointed; buffers so that .to(device) moves them.
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("neighbours", neighbours, persistent=False)
        # Row-major codes of the edges, sorted because the CSR rows are: membership by search.
        rows = torch.repeat_interleave(torch.arange(num_entities), offsets.diff())
        self.register_buffer("edge_codes", rows * num_entities + neighbours, persistent=False)
        # -1: no chain has run for this (side, anchor) yet; started uniformly on first use.
        self.register_buffer("states", torch.full((2, num_entities), -1, dtype=torch.long))

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Chain states for the replaced slots, shape (B, K), targeting the step's scores.

        Every positive runs a tail-side and a head-side chain (2B chains at once); a redraw for
        the filter continues the chains from where the previous draw left them.
        """
        generator, decoder = step.generator, step.decoder
        batch, k = head_replaced.shape
        device = self.states.device
        positives = step.positives.to(device)
        with torch.no_grad():
            rel = gather_rows(step.relations, positives[:, 1].to(step.relations.device))
            queries = decoder.both_query_relations(rel)  # the tail-side chains first
        anchors = torch.cat([positives[:, 0], positives[:, 2]])
        keys = torch.cat(
            [positives[:, 0] + TAIL * self.num_entities, positives[:, 2] + HEAD * self.num_entities]
        )
        start = self.states.view(-1)[keys]
        fresh = torch.randint(
            self.num_entities, start.shape, generator=generator, device=generator.device
        ).to(device)
        start = torch.where(start < 0, fresh, start)
        path = self.walk(
            decoder, anchors, queries, start, step.entities, self.burn_in + k, generator
        )
        self._remember(keys, path[:, -1])
        tails, heads = path[:, self.burn_in :].split(batch)
        return torch.where(head_replaced.to(device), heads, tails)

    @torch.no_grad()
    def walk(
        self,
        decoder: Decoder,
        anchors: LongTensor,
        queries: Tensor,
        start: LongTensor,
        entities: Tensor,
        steps: int,
        generator: torch.Generator,
    ) -> LongTensor:
        """Run one Metropolis-Hastings chain per row, all rows at once.

        Chain ``i`` targets ``exp(alpha * score(entities[anchors[i]], queries[i], c))`` over the
        entities ``c``, scored by ``decoder``. Shapes: anchors, start (n,); queries (n, d_r);
        entities (E, d). Returns the state after each step, shape (n, steps).
        """
        # Every step scores the same queries: RotatE's rotations (a cosine and a sine each) and
        # the other decoders' compositions are computed once for the walk.
        score = decoder.tails_scorer(gather_rows(entities, anchors.to(entities.device)), queries)

        def log_target(candidates: LongTensor) -> Tensor:
            vectors = gather_rows(entities, candidates.to(entities.device))
            return (self.alpha * score(vectors)).to(candidates.device)

        current = start
        current_log_target = log_target(current)
        path = []
        for _ in range(steps):
            proposal = self.propose(current, generator)
            proposal_log_target = log_target(proposal)
            log_ratio = (
                proposal_log_target
                - current_log_target
                + self.log_proposal_ratio(current, proposal)
            )
            u = torch.rand(len(current), generator=generator, device=generator.device)
            # log(u) < log_ratio is u < min(1, ratio); a NaN ratio (non-finite scores) rejects.
            accept = u.to(current.device).log() < log_ratio
            current = torch.where(accept, proposal, current)
            current_log_target = torch.where(accept, proposal_log_target, current_log_target)
            path.append(current)
        if not path:
            return start.new_zeros(len(start), 0)
        return torch.stack(path, 1)

    def propose(self, current: LongTensor, generator: torch.Generator) -> LongTensor:
        """A proposal per chain, shape (n,): uniform with probability ``uniform_share`` or when
        the current state has no neighbour, else a uniformly chosen neighbour.

        The same random numbers are drawn whichever move is made, so a seed fixes the stream.
        """
        n, device = len(current), current.device
        coin = torch.rand(n, generator=generator, device=generator.device).to(device)
        uniform = torch.randint(
            self.num_entities, (n,), generator=generator, device=generator.device
        ).to(device)
        position = torch.rand(n, generator=generator, device=generator.device).to(device)
        if len(self.neighbours) == 0:
            return uniform
        first = self.offsets[current]
        degree = self.offsets[current + 1] - first
        pick = (position * degree).long().clamp_max(degree - 1).clamp_min(0)
        neighbour = self.neighbours[(first + pick).clamp_max(len(self.neighbours) - 1)]
        use_uniform = (coin < self.uniform_share) | (degree == 0)
        return torch.where(use_uniform, uniform, neighbour)

    def log_proposal_ratio(self, current: LongTensor, proposal: LongTensor) -> Tensor:
        """``log q(current | proposal) - log q(proposal | current)``, shape (n,): the Hastings
        correction. The graph is undirected, so one adjacency lookup serves both directions."""
        linked = self._linked(current, proposal)
        return self._log_q(proposal, linked) - self._log_q(current, linked)

    def _linked(self, source: LongTensor, target: LongTensor) -> BoolTensor:
        """Whether ``target`` is a neighbour of ``source``, shapes (n,) -> (n,)."""
        if len(self.edge_codes) == 0:
            return torch.zeros_like(source, dtype=torch.bool)
        codes = source * self.num_entities + target
        index = torch.searchsorted(self.edge_codes, codes).clamp_max(len(self.edge_codes) - 1)
        return self.edge_codes[index] == codes

    def _log_q(self, source: LongTensor, linked: BoolTensor) -> Tensor:
        """``log q(y | source)`` of :meth:`propose` given whether ``y`` is a neighbour of
        ``source``, shape (n,): ``q(y | x) = s / E + (1 - s) * [y in N(x)] / deg(x)``, with the
        neighbour term ``1 / E`` where ``x`` has no neighbour (its neighbour move falls back to a
        uniform one)."""
        e = self.num_entities
        degree = (self.offsets[source + 1] - self.offsets[source]).double()
        neighbour_term = torch.where(degree > 0, linked.double() / degree.clamp_min(1), 1.0 / e)
        return (self.uniform_share / e + (1 - self.uniform_share) * neighbour_term).log().float()

    def _remember(self, keys: LongTensor, final: LongTensor) -> None:
        """Store each chain's last state under its (side, anchor) key, shapes (n,).

        Positives sharing an anchor share a key: the last of them in the batch wins, picked by a
        max over chain indices so the result does not depend on write order (as a scatter with
        repeated indices would on a GPU).
        """
        if len(keys) == 0:
            return
        flat = self.states.view(-1)
        winner = torch.full_like(flat, -1)
        order = torch.arange(len(keys), device=keys.device)
        winner.scatter_reduce_(0, keys, order, reduce="amax")
        # A where rather than a masked write: no host synchronisation on a GPU.
        flat.copy_(torch.where(winner >= 0, final[winner.clamp_min(0)], flat))


def neighbour_lists(triples: LongTensor, num_entities: int) -> tuple[LongTensor, LongTensor]:
    """The undirected entity graph of ``triples`` (N, 3) as CSR: row offsets, shape (E + 1,), and
    the neighbour ids, shape (M,), each row sorted and without repeats.

    Relations and direction are dropped (the paper's graphs are undirected), and so are self-loops,
    whose neighbour move would be a wasted step.
    """
    heads, tails = triples[:, 0].cpu(), triples[:, 2].cpu()
    sources = torch.cat([heads, tails])
    targets = torch.cat([tails, heads])
    keep = sources != targets
    codes = torch.unique(sources[keep] * num_entities + targets[keep])  # sorted
    rows, neighbours = codes // num_entities, codes % num_entities
    counts = torch.bincount(rows, minlength=num_entities)
    offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return offsets, neighbours
