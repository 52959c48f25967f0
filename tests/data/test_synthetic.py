"""Synthetic power-law graphs: their sizes exactly, every entity in train, held-out triples
that train can answer for, heavy-tailed degrees, and the same graph from the same seed."""

import pytest
import torch

from dans.data.synthetic import power_law_graph, zipf_draws
from dans.errors import DataError


def test_the_graph_has_the_sizes_asked_for_and_each_triple_once():
    kg = power_law_graph(2_000, 12, 9_000, 300, 400, seed=3)
    assert (kg.num_entities, kg.num_relations) == (2_000, 12)
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (9_000, 300, 400)
    every = torch.cat([kg.train, kg.valid, kg.test])
    assert len(torch.unique(every, dim=0)) == len(every)
    assert kg.entity_names[:3] == ["e0", "e1", "e2"] and kg.relation_names[-1] == "r11"


def test_every_entity_is_in_train_and_held_out_triples_name_only_what_train_does():
    kg = power_law_graph(2_000, 12, 9_000, 300, 400, seed=3)
    in_train = torch.zeros(kg.num_entities, dtype=torch.bool)
    in_train[kg.train[:, [0, 2]].flatten()] = True
    assert in_train.all()
    relations = set(kg.train[:, 1].tolist())
    assert set(kg.valid[:, 1].tolist()) | set(kg.test[:, 1].tolist()) <= relations


def test_degrees_are_heavy_tailed():
    kg = power_law_graph(5_000, 10, 40_000, 10, 10, seed=0)
    degree = torch.bincount(kg.train[:, [0, 2]].flatten(), minlength=kg.num_entities).double()
    # A power law: a median of a few edges and hubs with a hundred times that.
    assert degree.min() >= 1 and degree.median() <= 10
    assert degree.max() >= 100 * degree.median()


def test_the_same_seed_gives_the_same_graph_and_another_seed_another():
    first, again = (power_law_graph(500, 5, 2_000, 50, 50, seed=7) for _ in range(2))
    other = power_law_graph(500, 5, 2_000, 50, 50, seed=8)
    assert all(torch.equal(getattr(first, s), getattr(again, s)) for s in ("train", "test"))
    assert not torch.equal(first.train, other.train)


def test_zipf_draws_follow_their_law():
    generator = torch.Generator().manual_seed(0)
    draws = zipf_draws(200_000, 4, 1.0, generator)
    counts = torch.bincount(draws, minlength=4).double().sort(descending=True).values
    # P(rank k) = (1 / k) / (1 + 1/2 + 1/3 + 1/4).
    expected = torch.tensor([12, 6, 4, 3], dtype=torch.float64) / 25
    torch.testing.assert_close(counts / counts.sum(), expected, atol=0.005, rtol=0)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((10, 2, 5, 1, 1), "5 train triples cannot touch each of 10 entities"),
        ((2, 1, 3, 1, 1), "5 distinct triples do not fit 2 entities"),
        ((0, 1, 3, 1, 1), "at least one entity"),
    ],
)
def test_impossible_sizes_are_refused(sizes, message):
    with pytest.raises(DataError, match=message):
        power_law_graph(*sizes)
