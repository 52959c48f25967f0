"""nearest_allowed: the nearest entities forming no known-true triple, against brute force."""

import pytest
import torch

from dans.data.graph import KnownTriples
from dans.samplers.snap import nearest_allowed

E, R, D = 12, 3, 5


def _problem(seed=0, queries=30, known_count=40):
    """A small random problem: entities, known triples, and queries of random side."""
    g = torch.Generator().manual_seed(seed)
    entities = torch.randn(E, D, generator=g)
    triples = torch.stack(
        [
            torch.randint(E, (known_count,), generator=g),
            torch.randint(R, (known_count,), generator=g),
            torch.randint(E, (known_count,), generator=g),
        ],
        1,
    )
    vectors = torch.randn(queries, D, generator=g)
    anchors = torch.randint(E, (queries,), generator=g)
    relations = torch.randint(R, (queries,), generator=g)
    head_replaced = torch.rand(queries, generator=g) < 0.5
    known = KnownTriples(triples, E, R)
    return vectors, anchors, relations, head_replaced, entities, known, triples


def _brute_force(vectors, anchors, relations, head_replaced, entities, triples, k):
    """Sort every entity by distance, drop those completing a known triple, keep the first k."""
    known = {tuple(t) for t in triples.tolist()}
    ids, distances = [], []
    rows = zip(vectors, anchors.tolist(), relations.tolist(), head_replaced.tolist(), strict=True)
    for v, a, r, head in rows:
        dist = (entities - v).pow(2).sum(-1).sqrt()
        allowed = [
            e for e in dist.argsort().tolist() if ((e, r, a) if head else (a, r, e)) not in known
        ][:k]
        ids.append(allowed)
        distances.append(dist[allowed].tolist())
    return torch.tensor(ids), torch.tensor(distances)


@pytest.mark.parametrize("k", [1, 3])
def test_matches_brute_force(k):
    vectors, anchors, relations, head_replaced, entities, known, triples = _problem()
    ids, distances = nearest_allowed(
        vectors, anchors, relations, head_replaced, entities, known, k=k
    )
    expected_ids, expected_distances = _brute_force(
        vectors, anchors, relations, head_replaced, entities, triples, k
    )
    assert ids.shape == distances.shape == (len(vectors), k)
    assert torch.equal(ids, expected_ids)
    torch.testing.assert_close(distances, expected_distances, atol=1e-4, rtol=1e-4)
    # Not vacuous: on both sides, some queries' nearest entity overall is forbidden.
    unfiltered = torch.cdist(vectors, entities).argmin(1)
    moved = unfiltered != ids[:, 0]
    assert moved[head_replaced].any() and moved[~head_replaced].any()


@pytest.mark.parametrize("memory_elements", [13, 25, 7 * E])
def test_chunking_gives_the_same_answer(memory_elements):
    """Blocks of 1, 2 and 7 rows (the last block partial) agree with one block."""
    vectors, anchors, relations, head_replaced, entities, known, _ = _problem(seed=1)
    whole = nearest_allowed(vectors, anchors, relations, head_replaced, entities, known, k=2)
    chunked = nearest_allowed(
        vectors,
        anchors,
        relations,
        head_replaced,
        entities,
        known,
        k=2,
        memory_elements=memory_elements,
    )
    assert torch.equal(chunked[0], whole[0])
    torch.testing.assert_close(chunked[1], whole[1])


@pytest.mark.parametrize("head", [False, True])
def test_fewer_allowed_than_k_gives_inf(head):
    """Every entity but 5 completes a known triple with (anchor 0, relation 1) on that side."""
    others = [e for e in range(E) if e != 5]
    triples = torch.tensor([(e, 1, 0) if head else (0, 1, e) for e in others])
    # An unrelated known triple with the other side and another relation must not interfere.
    triples = torch.cat([triples, torch.tensor([[5, 2, 0], [0, 2, 5]])])
    known = KnownTriples(triples, E, R)
    entities = torch.randn(E, D, generator=torch.Generator().manual_seed(2))
    vectors = entities[[3, 5]] + 0.01  # nearest to a forbidden entity, then to the allowed one
    ids, distances = nearest_allowed(
        vectors,
        torch.tensor([0, 0]),
        torch.tensor([1, 1]),
        torch.tensor([head, head]),
        entities,
        known,
        k=3,
    )
    assert ids[:, 0].tolist() == [5, 5]
    torch.testing.assert_close(
        distances[:, 0], (vectors - entities[5]).norm(dim=-1), atol=1e-4, rtol=1e-4
    )
    assert torch.isinf(distances[:, 1:]).all()


@pytest.mark.parametrize("k", [1, 4])
def test_empty_input(k):
    _, _, _, _, entities, known, _ = _problem()
    empty = torch.zeros(0, dtype=torch.long)
    ids, distances = nearest_allowed(
        torch.zeros(0, D), empty, empty, empty.bool(), entities, known, k=k
    )
    assert ids.shape == distances.shape == (0, k)
    assert ids.dtype == torch.long
