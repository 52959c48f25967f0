"""SANS: k-hop neighbourhoods against a brute-force search, walks, fallback, memory guard."""

import itertools
from collections import Counter, deque

import pytest
import torch

from dans.errors import ConfigError
from dans.models.context import BuildContext
from dans.samplers import sans
from dans.samplers.base import SAMPLERS, StepContext
from dans.samplers.sans import SANSOptions, SANSSampler

pytestmark = pytest.mark.usefixtures("one_thread")

DIM = 8
# A path 0-1-2-3-4-5-9 with a branch 1-6; 7 only has a self-loop and 8 no triple at all. The
# (1, 1, 0) triple duplicates the 0-1 edge in the other direction.
SMALL_TRAIN = torch.tensor(
    [
        (0, 0, 1),
        (1, 1, 0),
        (1, 1, 2),
        (2, 0, 3),
        (3, 0, 4),
        (4, 1, 5),
        (6, 0, 1),
        (7, 1, 7),
        (5, 0, 9),
    ]
)
SMALL_E = 10


def _bfs(train, num_entities, hops):
    """Brute force: entity -> the set of entities 1..hops hops away in the undirected graph."""
    neighbours = {e: set() for e in range(num_entities)}
    for h, _, t in train.tolist():
        if h != t:
            neighbours[h].add(t)
            neighbours[t].add(h)
    within = {}
    for source in range(num_entities):
        distance = {source: 0}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            if distance[node] == hops:
                continue
            for other in neighbours[node]:
                if other not in distance:
                    distance[other] = distance[node] + 1
                    queue.append(other)
        within[source] = set(distance) - {source}
    return within


def _sampler(
    train=SMALL_TRAIN,
    num_entities=SMALL_E,
    k=5,
    known_triples=None,
    filter_negatives=False,
    **options,
):
    return SANSSampler(
        num_entities=num_entities,
        num_negatives=k,
        train_triples=train,
        known_triples=known_triples,
        filter_negatives=filter_negatives,
        options=SANSOptions(**options),
    )


def _step(positives, entities=None, seed=0):
    """SANS reads a step's positives, its generator and the entities it gathers, nothing else."""
    return StepContext(positives, entities, None, None, torch.Generator().manual_seed(seed))


def _draw_from(sampler, anchors, k, head_replaced, seed=0):
    """Draws for each anchor, shape (len(anchors), k), with the anchor kept on one side."""
    anchors = torch.as_tensor(anchors)
    other = torch.zeros_like(anchors)
    if head_replaced:
        positives = torch.stack([other, other, anchors], 1)
    else:
        positives = torch.stack([anchors, other, other], 1)
    side = torch.full((len(anchors), k), head_replaced)
    return sampler.draw(_step(positives, seed=seed), side)


def _rows(sampler):
    offsets, targets = sampler.offsets.tolist(), sampler.targets.tolist()
    return [targets[a:b] for a, b in itertools.pairwise(offsets)]


@pytest.mark.parametrize("hops", [1, 2, 3, 4, 7])
def test_khop_index_matches_brute_force_search(hops):
    expected = _bfs(SMALL_TRAIN, SMALL_E, hops)
    rows = _rows(_sampler(hops=hops))
    assert rows == [sorted(expected[e]) for e in range(SMALL_E)]
    # Both ends of an edge see each other, whichever way the triples point.
    assert 0 in rows[1] and 1 in rows[0] and 6 in rows[1]
    assert rows[7] == [] and rows[8] == []


@pytest.mark.parametrize("dense_fill", [0, 1 << 40])  # sorted codes, bitmaps
@pytest.mark.parametrize("hops", [1, 2])
def test_khop_index_on_umls_in_blocks_and_pieces(umls, monkeypatch, dense_fill, hops):
    expected = _bfs(umls.train, umls.num_entities, hops)
    # Blocks of 20 anchors and expansion pieces of 400 entries exercise the chunking paths.
    monkeypatch.setattr(sans, "_DENSE_FILL", dense_fill)
    monkeypatch.setattr(sans, "_BLOCK_PAIRS", 20 * umls.num_entities)
    monkeypatch.setattr(sans, "_EXPANSION_ELEMENTS", 400)
    sampler = _sampler(umls.train, umls.num_entities, hops=hops)
    assert _rows(sampler) == [sorted(expected[e]) for e in range(umls.num_entities)]
    assert sampler.targets.dtype == torch.int32


@pytest.mark.parametrize("head_replaced", [False, True])
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_khop_draws_every_neighbour_and_nothing_else(hops, head_replaced):
    expected = _bfs(SMALL_TRAIN, SMALL_E, hops)
    anchors = [e for e in range(SMALL_E) if expected[e]]
    ids = _draw_from(_sampler(hops=hops), anchors, 600, head_replaced)
    for anchor, row in zip(anchors, ids.tolist(), strict=True):
        counts = Counter(row)
        assert set(counts) == expected[anchor], anchor
        # Uniform over the neighbourhood: each member near 600 / size.
        share = 600 / len(expected[anchor])
        assert all(abs(c - share) < 0.35 * share for c in counts.values()), (anchor, counts)


@pytest.mark.parametrize("hops", [1, 2, 3, 4])
def test_walk_endpoints_lie_within_k_hops(hops):
    expected = _bfs(SMALL_TRAIN, SMALL_E, hops)
    anchors = [e for e in range(SMALL_E) if expected[e]]
    sampler = _sampler(mode="rw", hops=hops)
    for head_replaced in (False, True):
        ids = _draw_from(sampler, anchors, 400, head_replaced)
        for anchor, row in zip(anchors, ids.tolist(), strict=True):
            assert set(row) <= expected[anchor], anchor
            assert anchor not in row
    if hops == 1:
        # One step: uniform over the direct neighbours, like khop with one hop.
        assert set(ids[anchors.index(1)].tolist()) == {0, 2, 6}


def test_walk_follows_the_walk_distribution():
    # From 0 the first step must go to 1, then to 0, 2 or 6 with 1/3 each; ending on the anchor
    # 0 gives the entity the walk came from, 1. So 1, 2, 6 each come about a third of the time.
    ids = _draw_from(_sampler(mode="rw", hops=2), [0], 3000, head_replaced=False)
    counts = Counter(ids[0].tolist())
    assert set(counts) == {1, 2, 6}
    assert all(abs(c - 1000) < 120 for c in counts.values()), counts
    # Five steps along the path from 0 can reach 5 (distance 5) but never 9 (distance 6).
    far = set(_draw_from(_sampler(mode="rw", hops=5), [0], 3000, False)[0].tolist())
    assert 5 in far and 9 not in far


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_umls_negatives_lie_within_k_hops_of_the_kept_entity(umls, mode):
    hops = 1 if mode == "khop" else 2
    expected = _bfs(umls.train, umls.num_entities, hops)
    sampler = _sampler(umls.train, umls.num_entities, k=20, hops=hops, mode=mode)
    positives = umls.train[:300]
    negatives = sampler.sample(_step(positives, torch.randn(umls.num_entities, DIM)))
    for positive, ids, sides in zip(
        positives.tolist(), negatives.ids.tolist(), negatives.head_replaced.tolist(), strict=True
    ):
        for entity, head_replaced in zip(ids, sides, strict=True):
            kept = positive[2] if head_replaced else positive[0]
            assert entity in expected[kept], (positive, entity, head_replaced)


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_shapes_and_exactly_one_side_replaced(umls, mode, one_side_replaced):
    k = 12
    sampler = _sampler(umls.train, umls.num_entities, k=k, mode=mode)
    entities = torch.randn(umls.num_entities, DIM)
    positives = umls.train[:500]
    negatives = sampler.sample(_step(positives, entities))
    assert negatives.ids.shape == (500, k) and negatives.ids.dtype == torch.long
    assert negatives.head_replaced.shape == (500, k)
    assert negatives.embeddings.shape == (500, k, DIM)
    assert torch.equal(negatives.embeddings, entities[negatives.ids])
    assert negatives.weights is None  # unweighted: self-adversarial weighting is another sampler
    one_side_replaced(positives, negatives)


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_entities_without_neighbours_fall_back_to_uniform(mode):
    # 7 has only a self-loop and 8 no triple: both draw from all 10 entities about equally.
    sampler = _sampler(mode=mode, hops=2)
    for head_replaced in (False, True):
        ids = _draw_from(sampler, [7, 8], 5000, head_replaced)
        for row in ids.tolist():
            counts = Counter(row)
            assert set(counts) == set(range(SMALL_E))
            assert all(abs(c - 500) < 100 for c in counts.values()), counts
    # Entities with neighbours in the same batch are unaffected.
    ids = _draw_from(sampler, [7, 0], 1000, False)
    assert set(ids[1].tolist()) <= {1, 2, 6}


def test_memory_guard_refuses_a_too_large_index(umls, monkeypatch):
    args = (umls.train, umls.num_entities)
    # Refused from the sample estimate, before the index is built.
    with pytest.raises(ConfigError, match=r"about .* pairs") as refused:
        _sampler(*args, hops=2, max_pairs=10_000)
    message = str(refused.value)
    assert "--sans-mode rw" in message and "--sans-hops" in message
    assert "--sans-max-pairs" in message and "10,000" in message
    # Refused by the exact count while building when the estimate sees nothing.
    monkeypatch.setattr(sans, "_ESTIMATE_ANCHORS", 0)
    monkeypatch.setattr(sans, "_BLOCK_PAIRS", 10 * umls.num_entities)
    with pytest.raises(ConfigError, match=r"more than .* pairs.*--sans-mode rw"):
        _sampler(*args, hops=2, max_pairs=10_000)
    # Below the limit it builds (18,054 pairs for 2 hops); rw builds no index at all.
    assert _sampler(*args, hops=2, max_pairs=18_054).targets.numel() == 18_054 + 1
    assert _sampler(*args, hops=3, mode="rw", max_pairs=1).mode == "rw"


def test_invalid_settings_name_their_flags():
    with pytest.raises(ConfigError, match="--sans-mode"):
        _sampler(mode="bfs")
    with pytest.raises(ConfigError, match="--sans-hops"):
        _sampler(hops=0)
    with pytest.raises(ConfigError, match="--sans-max-pairs"):
        _sampler(max_pairs=0)


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_filtering_drops_every_known_true_negative(umls, train_set, mode):
    k = 10
    args = (umls.train, umls.num_entities)
    positives = umls.train[:1000]
    entities = torch.randn(umls.num_entities, DIM)

    def sample(sampler):
        return sampler.sample(_step(positives, entities))

    # Neighbours often complete true triples in UMLS, so the filtered check is not vacuous.
    unfiltered = sample(_sampler(*args, k=k, mode=mode, hops=1))
    known = [
        t in train_set for t in map(tuple, unfiltered.triples(positives).flatten(0, 1).tolist())
    ]
    assert sum(known) > 100

    sampler = _sampler(
        *args,
        k=k,
        mode=mode,
        hops=1,
        known_triples=umls.train_known_triples,
        filter_negatives=True,
    )
    negatives = sample(sampler)
    triples = negatives.triples(positives).flatten(0, 1).tolist()
    for triple, weight in zip(triples, negatives.weights.flatten().tolist(), strict=True):
        assert (weight == 0.0) == (tuple(triple) in train_set), triple
    assert 0 < int((negatives.weights == 0).sum()) < sum(known)


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_moves_keep_it_working_and_nothing_is_checkpointed(umls, mode):
    sampler = _sampler(umls.train, umls.num_entities, k=7, mode=mode)
    positives = umls.train[:50]
    entities = torch.randn(umls.num_entities, DIM)
    before = sampler.sample(_step(positives, entities, seed=3))
    sampler.to(torch.float64)  # a dtype move leaves the integer index alone
    assert sampler.offsets.dtype == torch.long and sampler.targets.dtype == torch.int32
    after = sampler.sample(_step(positives, entities.double(), seed=3))
    assert torch.equal(before.ids, after.ids)
    assert after.embeddings.dtype == torch.float64
    assert sampler.state_dict() == {}  # rebuilt from train, never checkpointed


@pytest.mark.parametrize("mode", ["khop", "rw"])
def test_same_seed_same_negatives(umls, mode):
    sampler = _sampler(umls.train, umls.num_entities, k=10, mode=mode)
    positives = umls.train[:100]
    side = torch.rand(100, 10, generator=torch.Generator().manual_seed(0)) < 0.5

    def draw(seed):
        return sampler.draw(_step(positives, seed=seed), side)

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_registered_and_built_by_name(umls):
    assert SAMPLERS.get("sans") is SANSSampler
    context = BuildContext(umls, dim=8, num_negatives=4, filter_negatives=False, seed=1)
    sampler = SAMPLERS.get("sans").from_context(context, SANSOptions(mode="rw", hops=3))
    assert (sampler.mode, sampler.hops, sampler.num_negatives) == ("rw", 3, 4)
