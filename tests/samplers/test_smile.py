"""SMiLE on a hand-made typed graph: its schema graph, the types a slot allows, and intra- and
inter-schema draws."""

import pytest
import torch

from dans.data.types import EntityTypes
from dans.errors import ConfigError
from dans.samplers.base import StepContext
from dans.samplers.smile import SMiLEOptions, SMiLESampler, schema_graph
from dans.samplers.typed import TypedEntities

# People 0-1 (type 0), cities 2-3 (type 1), countries 4-5 (type 2), entity 6 untyped.
TYPES = EntityTypes(
    ["person", "city", "country"],
    torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1], [4, 2], [5, 2]]),
    "test",
)
# r0: person born_in city (twice); r1: city in country (once).
TRAIN = torch.tensor([[0, 0, 2], [1, 0, 3], [2, 1, 4]])
E, R = 7, 2


def _sampler(**options):
    return SMiLESampler(E, R, 4, TRAIN, TYPES, options=SMiLEOptions(**options))


def test_the_schema_graph_by_hand():
    typed = TypedEntities(TYPES, E)
    schema = schema_graph(TRAIN, typed, R, min_count=1)
    assert schema.nonzero().tolist() == [[0, 0, 1], [1, 1, 2]]
    # SMiLE's frequency filter: r1's one triple is too rare at 2.
    assert schema_graph(TRAIN, typed, R, min_count=2).nonzero().tolist() == [[0, 0, 1]]


def test_a_slot_allows_the_types_the_schema_has_there():
    sampler = _sampler()
    positives = torch.tensor([[0, 0, 2], [2, 1, 4], [6, 0, 2]])
    # Tails: a person's born_in gives a city; a city's in gives a country; an untyped head
    # stands for every type.
    assert sampler.allowed_types(positives, head_replaced=False).tolist() == [
        [False, True, False],
        [False, False, True],
        [False, True, False],
    ]
    # Heads: born_in a city comes from a person; in a country, from a city.
    assert sampler.allowed_types(positives, head_replaced=True).tolist() == [
        [True, False, False],
        [False, True, False],
        [True, False, False],
    ]


def test_intra_schema_negatives_fit_the_schema_and_the_rest_break_it():
    sampler = _sampler(hard_share=0.5)
    positives = torch.tensor([[0, 0, 2]]).repeat(300, 1)
    step = StepContext(positives, None, None, None, torch.Generator().manual_seed(0))
    drawn = sampler.draw(step, torch.zeros(300, 4, dtype=torch.bool))  # tails replaced
    assert set(drawn[:, :2].flatten().tolist()) == {2, 3}  # cities
    assert set(drawn[:, 2:].flatten().tolist()) == {0, 1, 4, 5, 6}  # every other entity
    heads = sampler.draw(step, torch.ones(300, 4, dtype=torch.bool))
    assert set(heads[:, :2].flatten().tolist()) == {0, 1}  # people


def test_contrastive_weights_are_an_option():
    assert _sampler(alpha=0.0).weigh(None, None) is None
    with pytest.raises(ConfigError, match="--smile-hard-share must be at most 1"):
        SMiLEOptions(hard_share=1.5)


def test_allowed_types_equal_the_brute_force_on_random_types():
    torch.manual_seed(0)
    entities, relations, kinds = 40, 5, 6
    membership = torch.rand(entities, kinds) < 0.3  # several types, or none, per entity
    pairs = membership.nonzero()
    types = EntityTypes([f"t{i}" for i in range(kinds)], pairs, "random")
    train = torch.stack(
        [
            torch.randint(entities, (200,)),
            torch.randint(relations, (200,)),
            torch.randint(entities, (200,)),
        ],
        1,
    )
    sampler = SMiLESampler(entities, relations, 4, train, types)
    positives = torch.stack(
        [torch.arange(entities), torch.randint(relations, (entities,)), torch.arange(entities)], 1
    )
    schema = sampler.schema[positives[:, 1]]  # (B, T_head, T_tail)
    for head_replaced, kept_col in ((True, 2), (False, 0)):
        kept = membership[positives[:, kept_col]]
        kept = torch.where(kept.any(1, keepdim=True), kept, torch.ones_like(kept))
        brute = (
            (schema & kept[:, None, :]).any(2)
            if head_replaced
            else (schema & kept[:, :, None]).any(1)
        )
        assert torch.equal(sampler.allowed_types(positives, head_replaced), brute)


def test_the_schema_graph_equals_the_brute_force_on_random_types(random_types):
    entities, relations, kinds = 30, 4, 5
    membership, types, train = random_types(entities, relations, kinds, 300, seed=1)
    counts = torch.zeros(relations, kinds, kinds)
    for h, r, t in train.tolist():  # brute force: one count per (head type, tail type) pair
        counts[r] += membership[h].float()[:, None] * membership[t].float()[None, :]
    typed = TypedEntities(types, entities)
    for min_count in (1, 3):
        assert torch.equal(schema_graph(train, typed, relations, min_count), counts >= min_count)
