"""Synthetic knowledge graphs of any size, for scale work: power-law entity degrees, named
entities and relations, reproducible from a seed."""

from __future__ import annotations

import torch
from torch import LongTensor

from dans.data.graph import KnowledgeGraph
from dans.errors import DataError


def zipf_draws(
    count: int, categories: int, exponent: float, generator: torch.Generator
) -> LongTensor:
    """``count`` draws from 0..categories-1 with ``P(i) ∝ (1 + rank(i))^-exponent``, the ranks a
    random permutation, so that popular ids are spread over the id range: shape (count,)."""
    weights = torch.arange(1, categories + 1, dtype=torch.float64).pow(-exponent)
    cumulative = torch.cumsum(weights, 0)
    u = torch.rand(count, generator=generator, dtype=torch.float64) * cumulative[-1]
    ranks = torch.searchsorted(cumulative, u, right=True).clamp_max(categories - 1)
    return torch.randperm(categories, generator=generator)[ranks]


def power_law_graph(
    entities: int,
    relations: int,
    train: int,
    valid: int,
    test: int,
    exponent: float = 0.8,
    seed: int = 0,
) -> KnowledgeGraph:
    """A graph of ``entities`` entities (``e0``, ``e1``, ...) and ``relations`` relations
    (``r0``, ...) with ``train``, ``valid`` and ``test`` distinct triples.

    Every entity takes part in at least one train triple, with a partner drawn by popularity;
    the other triples draw both their entities from a Zipf law of rank ``exponent`` (degrees
    then follow a power law of exponent about ``1 + 1 / exponent``, as in real graphs) and their
    relation from a Zipf law of rank exponent 1. Valid and test are drawn from those other
    triples, so every entity and relation they name is in train.
    """
    total = train + valid + test
    if min(entities, relations, train) < 1 or min(valid, test) < 0:
        raise DataError("a synthetic graph needs at least one entity, relation and train triple")
    if train < entities:
        raise DataError(f"{train} train triples cannot touch each of {entities} entities")
    if total > entities * entities * relations:
        raise DataError(f"{total} distinct triples do not fit {entities} entities")
    generator = torch.Generator().manual_seed(seed)
    # One triple per entity: the entity at a random end, its partner and relation by popularity.
    own = torch.arange(entities)
    partner = zipf_draws(entities, entities, exponent, generator)
    relation = zipf_draws(entities, relations, 1.0, generator)
    as_head = torch.rand(entities, generator=generator) < 0.5
    covering = torch.stack(
        [torch.where(as_head, own, partner), relation, torch.where(as_head, partner, own)], 1
    )
    codes = _codes(covering, entities, relations).unique()
    rest = torch.empty(0, dtype=torch.long)
    while len(codes) + len(rest) < total:
        # Each round draws what is still missing and a fifth more: duplicates of earlier
        # triples are dropped, and popular pairs repeat.
        want = int((total - len(codes) - len(rest)) * 1.2) + 16
        drawn = torch.stack(
            [
                zipf_draws(want, entities, exponent, generator),
                zipf_draws(want, relations, 1.0, generator),
                zipf_draws(want, entities, exponent, generator),
            ],
            1,
        )
        fresh = _codes(drawn, entities, relations).unique()
        rest = torch.cat([rest, fresh[~torch.isin(fresh, codes) & ~torch.isin(fresh, rest)]])
    rest = rest[torch.randperm(len(rest), generator=generator)][: total - len(codes)]
    held = rest[: valid + test]
    train_codes = torch.cat([codes, rest[valid + test :]])
    train_codes = train_codes[torch.randperm(len(train_codes), generator=generator)]
    splits = [
        _triples(part, entities, relations) for part in (train_codes, held[:valid], held[valid:])
    ]
    return KnowledgeGraph(
        [f"e{i}" for i in range(entities)],
        [f"r{i}" for i in range(relations)],
        *splits,
        name=f"power-law-{entities}",
    )


def _codes(triples: LongTensor, entities: int, relations: int) -> LongTensor:
    heads, rels, tails = triples.unbind(1)
    return (heads * relations + rels) * entities + tails


def _triples(codes: LongTensor, entities: int, relations: int) -> LongTensor:
    pair, tails = codes // entities, codes % entities
    return torch.stack([pair // relations, pair % relations, tails], 1)
