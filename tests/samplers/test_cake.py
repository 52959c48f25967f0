"""CAKE on hand-made graphs: relation complexity, the commonsense candidates of each side, and
draws that come from them."""

import torch

from dans.data.graph import KnownTriples
from dans.data.types import EntityTypes
from dans.samplers.base import StepContext
from dans.samplers.cake import (
    MANY_TO_MANY,
    MANY_TO_ONE,
    ONE_TO_MANY,
    ONE_TO_ONE,
    CAKESampler,
    relation_complexity,
)

# Entities 0-1 are people (type 0), 2-3 cities (type 1), 4-5 countries (type 2); entity 6 has
# no type.
TYPES = EntityTypes(["person", "city", "country"], torch.tensor([[0, 0], [1, 0], [2, 1],
                    [3, 1], [4, 2], [5, 2]]), "test")  # fmt: skip
# r0: person -> person, 1-1. r1: country -> city, 1-N (a country has cities). r2: person ->
# city, N-1 (both people were born in city 2). r3: person -> country, N-N.
TRAIN = torch.tensor([
    [0, 0, 1],
    [4, 1, 2], [4, 1, 3],
    [0, 2, 2], [1, 2, 2],
    [0, 3, 4], [0, 3, 5], [1, 3, 4], [1, 3, 5],
])  # fmt: skip
E, R = 7, 4


def _sampler(negatives=4):
    known = KnownTriples(TRAIN, E, R)
    return CAKESampler(E, R, negatives, TRAIN, TYPES, known_triples=known)


def test_relation_complexity_by_hand():
    assert relation_complexity(TRAIN, R).tolist() == [
        ONE_TO_ONE,
        ONE_TO_MANY,
        MANY_TO_ONE,
        MANY_TO_MANY,
    ]


def test_commonsense_candidates_by_hand():
    sampler = _sampler()
    positives = torch.tensor([[0, 0, 1], [4, 1, 2], [0, 2, 2], [0, 3, 4], [6, 2, 2]])
    # Replacing the head: 1-1 and 1-N keep the head's own types (person; country); N-1 and N-N
    # take the relation's head types the head lacks (people only, so none); an untyped head
    # takes the relation's head types.
    heads = sampler.candidate_types(positives, head_replaced=True).tolist()
    assert heads == [
        [True, False, False],
        [False, False, True],
        [False, False, False],
        [False, False, False],
        [True, False, False],
    ]
    # Replacing the tail: N-1 and N-N keep the tail's types (city; country); 1-1 and 1-N take
    # the relation's tail types the tail lacks (none for r0's person; none for r1's city).
    tails = sampler.candidate_types(positives, head_replaced=False).tolist()
    assert tails == [
        [False, False, False],
        [False, False, False],
        [False, True, False],
        [False, False, True],
        [False, True, False],
    ]


def test_relation_types_equal_the_brute_force_on_random_types(random_types):
    entities, relations, kinds = 30, 4, 5
    membership, types, train = random_types(entities, relations, kinds, 200, seed=0)
    known = KnownTriples(train, entities, relations)
    sampler = CAKESampler(entities, relations, 4, train, types, known_triples=known)
    for column, found in ((0, sampler.head_types), (2, sampler.tail_types)):
        brute = torch.zeros(relations, kinds, dtype=torch.bool)
        for triple in train.tolist():
            brute[triple[1]] |= membership[triple[column]]
        assert torch.equal(found, brute)


def _draw(sampler, positives, head_replaced, seed=0):
    step = StepContext(positives, None, None, None, torch.Generator().manual_seed(seed))
    return sampler.draw(step, head_replaced)


def test_negatives_come_from_the_candidates_as_far_as_they_go():
    sampler = _sampler(negatives=4)
    # Tail of (person 0, r3, country 4), N-N: its candidates are the two countries, so the
    # first two negatives of the row are countries and the rest any entity.
    positives = torch.tensor([[0, 3, 4]]).repeat(200, 1)
    tails = torch.zeros(200, 4, dtype=torch.bool)
    drawn = _draw(sampler, positives, tails)
    assert set(drawn[:, :2].flatten().tolist()) == {4, 5}
    assert len(set(drawn[:, 2:].flatten().tolist())) == E
    # Head of (country 4, r1, city 2), 1-N: two countries are candidates.
    heads = torch.ones(200, 4, dtype=torch.bool)
    drawn = _draw(sampler, torch.tensor([[4, 1, 2]]).repeat(200, 1), heads)
    assert set(drawn[:, :2].flatten().tolist()) == {4, 5}


def test_a_row_without_candidates_draws_uniformly():
    sampler = _sampler(negatives=4)
    # Head of (person 0, r2, city 2), N-1: no candidate type, so every entity.
    drawn = _draw(sampler, torch.tensor([[0, 2, 2]]).repeat(300, 1), torch.ones(300, 4).bool())
    assert set(drawn.flatten().tolist()) == set(range(E))


def test_train_true_negatives_are_always_redrawn():
    sampler = _sampler(negatives=4)
    assert sampler.filter_negatives
    positives = torch.tensor([[0, 3, 4]]).repeat(100, 1)
    step = StepContext(positives, torch.randn(E, 8), torch.randn(R, 8), None, torch.Generator())
    head_replaced, ids, keep = sampler.pick(step)
    triples = torch.stack(
        [
            torch.where(head_replaced, ids, positives[:, None, 0]),
            positives[:, None, 1].expand_as(ids),
            torch.where(head_replaced, positives[:, None, 2], ids),
        ],
        -1,
    )
    known = KnownTriples(TRAIN, E, R).contains(triples)
    assert not (known & keep).any()
