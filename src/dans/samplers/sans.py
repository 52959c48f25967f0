"""SANS: Structure-Aware Negative Sampling (Ahrabian et al., EMNLP 2020).

"Structure Aware Negative Sampling in Knowledge Graphs" draws the negatives of a positive
``(h, r, t)`` from the k-hop neighbourhood of the kept entity (of ``h`` when the tail is
replaced, of ``t`` when the head is) in the train graph taken as undirected and without relation
types: entities close to the anchor make harder negatives than uniform ones, at no learning cost.

Two modes, as in the paper:

``khop`` (the paper's SANS): uniform over the entities within ``hops`` hops of the anchor. The
    neighbourhoods are computed once, as a CSR index (buffers ``offsets``, ``targets``), by a
    breadth-first search run for blocks of anchors at once; drawing is then one uniform position
    in each anchor's row. On a dense graph the index can approach E^2 pairs (FB15k-237: 71M pairs
    for 2 hops, 175M for 3), so it is estimated first and refused above ``max_pairs``.
``rw`` (the paper's RW-SANS): the endpoint of a random walk of ``hops`` uniform steps from the
    anchor, walked afresh for every negative over the CSR adjacency (``offsets``, ``targets``:
    each entity's direct neighbours); memory stays that of the adjacency.

The paper also pairs SANS with self-adversarial weighting (Self-Adv-SANS); here the sampler is
unweighted (Uniform-SANS), since self-adversarial weighting is the separate ``self-adv`` sampler.

Differences from the authors' code (``codes/dataloader.py`` of kahrabian/SANS, read in forks that
keep it): their khop rows are the non-zeros of ``A^(k-1) + A^k``, which on an undirected graph is
the k-hop ball including the anchor itself; here the anchor is left out, as ``(h, r, h)`` is rarely
a useful negative. Their rw precomputes ``nrw`` walks per entity (1000 to 4500 in their best
configurations) and draws uniformly from the distinct endpoints (without restarting each walk's
neighbour list at the anchor, so later walks can drift past k hops); here every negative is the
endpoint of its own fresh walk, so rw follows the k-step walk distribution (nearby, well-connected
entities more often) and needs no walk count. A walk that ends on its anchor takes the entity it
came from, a direct neighbour, instead. Self-loops are dropped from the graph: they reach nothing
new, and a walk step must move. Their best configurations mostly use 2 hops (``best_config.sh``),
hence the default.

Fallback: an anchor with no neighbourhood (absent from train, or only in self-loops) gets uniform
negatives, as the authors' rw does for entities without neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import BoolTensor, LongTensor

from dans.data.graph import KnownTriples
from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.options import Options, option
from dans.samplers.base import NegativeSampler, StepContext

SANS_MODES = ("khop", "rw")
# (entity, neighbour) pairs SANS's k-hop index may hold: 2^27 int32 neighbours are 512 MiB.
SANS_MAX_PAIRS = 1 << 27
# Anchors searched together: at most this many (anchor, entity) pairs, 128 MiB of int64 codes.
_BLOCK_PAIRS = 1 << 24
# Neighbour-list entries one expansion step of the search materialises at once.
_EXPANSION_ELEMENTS = 1 << 22
# Anchors whose exact neighbourhood sizes estimate the index size before it is built.
_ESTIMATE_ANCHORS = 64
# Neighbourhoods filling more than 1/_DENSE_FILL of the graph on average are searched with
# bitmaps (FB15k-237, 2 hops: 3x faster); sparser ones with sorted codes (WN18RR: 3x faster).
_DENSE_FILL = 64


@dataclass(frozen=True)
class SANSOptions(Options):
    prefix: ClassVar[str] = "sans_"

    mode: str = option(
        "khop",
        "draw from each entity's k-hop neighbourhood (khop) or random-walk endpoints (rw)",
        choices=SANS_MODES,
    )
    hops: int = option(2, "neighbourhood radius k, or walk length", minimum=1)
    max_pairs: int = option(
        SANS_MAX_PAIRS, "largest k-hop index (entity, neighbour pairs) built", minimum=1
    )


class SANSSampler(NegativeSampler):
    """Negatives from the kept entity's k-hop neighbourhood; see the module docstring.

    ``mode``: ``"khop"`` (uniform over the neighbourhood) or ``"rw"`` (random-walk endpoints).
    ``hops``: the neighbourhood radius k, or the walk length. ``max_pairs``: the most
    (entity, neighbour) pairs the khop index may hold (unused by rw).
    """

    name = "sans"
    ids_only_settings: ClassVar[dict[str, Any] | None] = {}
    options_type = SANSOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: SANSOptions) -> SANSSampler:
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
        options: SANSOptions = SANSOptions(),
    ) -> None:
        """``train_triples``: shape (N, 3), whose heads and tails make the undirected graph."""
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        self.mode = options.mode
        self.hops = options.hops
        offsets, neighbours = adjacency(train_triples.cpu(), num_entities)
        if self.mode == "khop":
            offsets, neighbours = khop_neighbourhoods(
                offsets, neighbours, self.hops, options.max_pairs
            )
        # A trailing sentinel keeps the row lookup of an entity without entries (whose offset
        # may be the length of the list) in bounds; its draws are replaced by uniform ones.
        targets = torch.cat([neighbours.int(), neighbours.new_zeros(1, dtype=torch.int)])
        # Rebuilt from train rather than checkpointed; buffers so that .to(device) moves them.
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("targets", targets, persistent=False)

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Neighbourhood entities of each negative's kept entity, shape (B, K)."""
        generator = step.generator
        device = self.offsets.device
        positives = step.positives.to(device)
        head_replaced = head_replaced.to(device)
        # The kept entity: the tail when the head is replaced, the head otherwise.
        anchors = torch.where(head_replaced, positives[:, 2:3], positives[:, 0:1])
        if self.mode == "khop":
            ids, found = self._uniform_entry(anchors, generator)
        else:
            ids, found = self._walk(anchors, generator)
        uniform = torch.randint(
            self.num_entities, anchors.shape, generator=generator, device=generator.device
        ).to(device)
        return torch.where(found, ids, uniform)

    def _uniform_entry(
        self, rows: LongTensor, generator: torch.Generator
    ) -> tuple[LongTensor, BoolTensor]:
        """A uniform entry of each of ``rows`` (any shape) and whether the row had one."""
        starts = self.offsets[rows]
        sizes = self.offsets[rows + 1] - starts
        u = torch.rand(rows.shape, generator=generator, device=generator.device).to(rows.device)
        # float32 rounding can make u * size reach size: clamped back into the row.
        position = (u * sizes).long().clamp_max(sizes - 1).clamp_min(0)
        return self.targets[starts + position].long(), sizes > 0

    def _walk(
        self, anchors: LongTensor, generator: torch.Generator
    ) -> tuple[LongTensor, BoolTensor]:
        """Endpoints of one ``hops``-step uniform walk per anchor, all walks stepping together."""
        # Every entity reached from an anchor with neighbours has neighbours too (the graph is
        # undirected), so only an anchor without neighbours leaves its walks stuck.
        found = self.offsets[anchors + 1] > self.offsets[anchors]
        walker = previous = anchors
        for _ in range(self.hops):
            following, moved = self._uniform_entry(walker, generator)
            previous, walker = walker, torch.where(moved, following, walker)
        # Ending on the anchor (k >= 2) means the last step came from one of its neighbours.
        return torch.where(walker == anchors, previous, walker), found


def adjacency(train_triples: LongTensor, num_entities: int) -> tuple[LongTensor, LongTensor]:
    """The undirected, untyped train graph without self-loops or parallel edges, as CSR.

    Returns ``offsets``, shape (E + 1,), and ``neighbours``, shape (M,): the neighbours of entity
    ``i`` are ``neighbours[offsets[i]:offsets[i + 1]]``, sorted.
    """
    heads, tails = train_triples[:, 0], train_triples[:, 2]
    rows, cols = torch.cat([heads, tails]), torch.cat([tails, heads])
    loop = rows == cols
    codes = torch.unique(rows[~loop] * num_entities + cols[~loop])
    return _csr(codes // num_entities, codes % num_entities, num_entities)


def _csr(rows: LongTensor, cols: LongTensor, num_rows: int) -> tuple[LongTensor, LongTensor]:
    """Row-sorted coordinates, shape (M,) each -> ``offsets`` (num_rows + 1,), ``cols`` (M,)."""
    offsets = torch.zeros(num_rows + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return offsets, cols


def khop_neighbourhoods(
    offsets: LongTensor, neighbours: LongTensor, hops: int, max_pairs: int = SANS_MAX_PAIRS
) -> tuple[LongTensor, LongTensor]:
    """Every entity's entities within ``hops`` hops (itself excluded), as CSR.

    ``offsets`` (E + 1,), ``neighbours`` (M,): the adjacency from :func:`adjacency`. Returns
    ``offsets`` (E + 1,) and ``members`` (P,) int32, each row sorted. Raises ConfigError, before
    building, when a sample of anchors puts P above ``max_pairs``, and while building, as soon as
    the exact count passes it.
    """
    num_entities = len(offsets) - 1
    block = max(1, _BLOCK_PAIRS // max(1, num_entities))
    # A sample first: a refused index would take long to find out, and the neighbourhoods' fill
    # picks the search (the sample is every entity when there are few).
    sample = torch.randperm(num_entities, generator=torch.Generator().manual_seed(0))
    sample = sample[:_ESTIMATE_ANCHORS]
    sizes, _ = _reach(offsets, neighbours, sample, hops, dense=False)
    estimate = int(sizes.sum()) * num_entities // max(1, len(sample))
    if estimate > max_pairs:
        raise _too_many_pairs(hops, f"about {estimate:,}", max_pairs)
    dense = estimate * _DENSE_FILL > num_entities**2
    counts, members, total = [], [], 0
    for start in range(0, num_entities, block):
        anchors = torch.arange(start, min(start + block, num_entities))
        sizes, reached = _reach(offsets, neighbours, anchors, hops, dense)
        total += int(sizes.sum())
        if total > max_pairs:
            raise _too_many_pairs(hops, f"more than {total:,}", max_pairs)
        counts.append(sizes)
        members.append(reached.int())
    offsets = torch.zeros(num_entities + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.cat(counts), 0)
    return offsets, torch.cat(members)


def _reach(
    offsets: LongTensor, neighbours: LongTensor, anchors: LongTensor, hops: int, dense: bool
) -> tuple[LongTensor, LongTensor]:
    """Breadth-first search from all ``anchors`` (A,) at once.

    Returns ``sizes`` (A,), how many entities lie within ``hops`` hops of each anchor (itself
    excluded), and those entities (P,), anchor by anchor, each anchor's sorted. Each hop expands
    only the frontier (pairs first reached by the previous hop), so every edge is followed at
    most once per anchor. ``dense`` keeps the reached pairs as an (A, E) bitmap, whose cost
    follows A * E, and otherwise as sorted codes ``row * E + entity``, whose cost follows the
    neighbourhoods' sizes: the first is faster when neighbourhoods fill much of the graph.
    """
    num_entities = len(offsets) - 1
    rows = torch.arange(len(anchors))
    # The anchors count as visited so that no hop returns to them; they are dropped at the end.
    frontier_rows, frontier = rows, anchors
    if dense:
        bitmap = torch.zeros(len(anchors), num_entities, dtype=torch.bool)
        bitmap[rows, anchors] = True
    else:
        codes = rows * num_entities + anchors
    for _ in range(hops):
        if dense:
            expanded = torch.zeros_like(bitmap)
            for owner, entity in _expand(offsets, neighbours, frontier_rows, frontier):
                expanded[owner, entity] = True
            expanded &= ~bitmap
            bitmap |= expanded
            frontier_rows, frontier = expanded.nonzero().unbind(1)
        else:
            found = [
                torch.unique(owner * num_entities + entity)
                for owner, entity in _expand(offsets, neighbours, frontier_rows, frontier)
            ]
            candidates = torch.unique(torch.cat(found)) if found else codes[:0]
            # Both sorted: a binary search tells which candidates were reached before.
            index = torch.searchsorted(codes, candidates).clamp_max(len(codes) - 1)
            new = candidates[codes[index] != candidates]
            codes = torch.sort(torch.cat([codes, new])).values
            frontier_rows, frontier = new // num_entities, new % num_entities
        if len(frontier) == 0:
            break
    if dense:
        bitmap[rows, anchors] = False
        return bitmap.sum(1), bitmap.nonzero()[:, 1]
    row, entity = codes // num_entities, codes % num_entities
    other = entity != anchors[row]
    return torch.bincount(row[other], minlength=len(anchors)), entity[other]


def _expand(
    offsets: LongTensor, neighbours: LongTensor, rows: LongTensor, entities: LongTensor
) -> Iterator[tuple[LongTensor, LongTensor]]:
    """Every neighbour of each (row, entity) pair, shapes (F,): pieces of (row, neighbour).

    Pieces cover frontier pairs whose neighbour lists total at most ``_EXPANSION_ELEMENTS``
    entries (but at least one pair), to bound the index tensors built here.
    """
    sizes = offsets[entities + 1] - offsets[entities]
    ends = torch.cumsum(sizes, 0)
    start = 0
    while start < len(entities):
        limit = (int(ends[start - 1]) if start else 0) + _EXPANSION_ELEMENTS
        stop = max(start + 1, int(torch.searchsorted(ends, limit, right=True)))
        counts = sizes[start:stop]
        # Each neighbour-list entry: its list's start plus its rank within the list.
        firsts = torch.repeat_interleave(offsets[entities[start:stop]], counts)
        rank = torch.arange(len(firsts)) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        yield torch.repeat_interleave(rows[start:stop], counts), neighbours[firsts + rank]
        start = stop


def _too_many_pairs(hops: int, amount: str, max_pairs: int) -> ConfigError:
    return ConfigError(
        f"--sans-mode khop: the {hops}-hop neighbourhoods (--sans-hops {hops}) would hold "
        f"{amount} (entity, neighbour) pairs, over the limit of {max_pairs:,} "
        "(--sans-max-pairs); use --sans-mode rw, which walks on the fly, or fewer --sans-hops"
    )
