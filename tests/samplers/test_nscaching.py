"""NSCaching: cache draws, the refresh (top and importance), checkpoints, filtering, fallback."""

import pytest
import torch

import dans
from dans.builders import build_model
from dans.errors import ConfigError
from dans.models import DECODERS, gather
from dans.models.context import BuildContext
from dans.samplers.base import SAMPLERS, StepContext
from dans.samplers.nscaching import NSCachingOptions, NSCachingSampler

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, K = 16, 10


def _build(umls, seed=0, **kwargs):
    config = dans.TrainConfig(encoder="lookup", dim=DIM, negatives=K, device="cpu").validate()
    torch.manual_seed(seed)
    model = build_model(config, umls)
    sampler = NSCachingSampler(
        num_entities=umls.num_entities,
        num_relations=umls.num_relations,
        num_negatives=K,
        train_triples=umls.train,
        seed=seed,
        **kwargs,
    )
    return model, sampler


def _sample(model, sampler, positives, seed=0):
    entities, relations = model()
    generator = torch.Generator().manual_seed(seed)
    step = StepContext(positives, entities, relations, model.decoder, generator)
    return sampler.sample(step), entities, relations


def _step(positives, entities, decoder, generator):
    """A step of the 1-d model of :func:`_tiny`."""
    return StepContext(positives, entities, decoder.relations().detach(), decoder, generator)


def _tiny(values, relation=1.0, **options):
    """10 entities with 1-d DistMult embeddings ``values`` and one relation of weight
    ``relation``: the score of (a, r, c) is ``values[a] * relation * values[c]``."""
    train = torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1], [4, 0, 5]])
    decoder = DECODERS.get("distmult")(1, 1)
    with torch.no_grad():
        decoder.relation_embeddings.fill_(relation)
    sampler = NSCachingSampler(10, 1, K, train, options=NSCachingOptions(**options))
    entities = torch.tensor(values, dtype=torch.float32)[:, None]
    return sampler, entities, decoder


def test_registered_and_built_by_name(umls):
    assert SAMPLERS.get("nscaching") is NSCachingSampler
    context = BuildContext(umls, dim=8, num_negatives=K, filter_negatives=False, seed=3)
    sampler = SAMPLERS.get("nscaching").from_context(
        context, NSCachingOptions(refresh="top", cache_size=7)
    )
    assert sampler.refresh_mode == "top" and sampler.cache_size == 7
    assert sampler.candidates == 50  # the paper's N2
    keys = torch.unique(umls.train[:, 0] * umls.num_relations + umls.train[:, 1])
    assert sampler.tail_cache.shape == (len(keys), 7)


def test_defaults_follow_the_paper(umls):
    _, sampler = _build(umls)
    assert (sampler.cache_size, sampler.candidates) == (50, 50)
    assert sampler.refresh_mode == "importance" and sampler.temperature == 1.0
    heads, rels, tails = umls.train.unbind(1)
    assert len(sampler.tail_keys) == len(torch.unique(heads * umls.num_relations + rels))
    assert len(sampler.head_keys) == len(torch.unique(tails * umls.num_relations + rels))
    assert sampler.tail_cache.dtype == sampler.head_cache.dtype == torch.long
    for cache in (sampler.tail_cache, sampler.head_cache):
        assert cache.shape[1] == 50
        assert cache.min() >= 0 and cache.max() < umls.num_entities


def test_shapes_sides_and_draws_from_the_right_cache_row(umls, one_side_replaced):
    model, sampler = _build(umls)
    positives = umls.train[:500]
    tail_before, head_before = sampler.tail_cache.clone(), sampler.head_cache.clone()
    negatives, entities, _ = _sample(model, sampler, positives)
    ids, replaced = negatives.ids, negatives.head_replaced
    assert ids.shape == replaced.shape == (500, K) and ids.dtype == torch.long
    assert replaced.dtype == torch.bool
    assert negatives.embeddings.shape == (500, K, DIM)
    assert torch.equal(negatives.embeddings, entities[ids])
    assert negatives.embeddings.requires_grad  # the base model learns through the negatives
    assert negatives.weights is None
    one_side_replaced(positives, negatives)

    # Each id is an entry of its query's cache as it was before the sample's refresh.
    tail_rows = torch.searchsorted(
        sampler.tail_keys, positives[:, 0] * umls.num_relations + positives[:, 1]
    )
    head_rows = torch.searchsorted(
        sampler.head_keys, positives[:, 2] * umls.num_relations + positives[:, 1]
    )
    in_tail = (tail_before[tail_rows][:, None, :] == ids[..., None]).any(-1)
    in_head = (head_before[head_rows][:, None, :] == ids[..., None]).any(-1)
    assert in_head[replaced].all() and in_tail[~replaced].all()


def test_sampling_refreshes_only_the_batch_queries(umls):
    model, sampler = _build(umls)
    positives = umls.train[:100]
    tail_before, head_before = sampler.tail_cache.clone(), sampler.head_cache.clone()
    _sample(model, sampler, positives)
    tail_rows = torch.unique(
        torch.searchsorted(
            sampler.tail_keys, positives[:, 0] * umls.num_relations + positives[:, 1]
        )
    )
    head_rows = torch.unique(
        torch.searchsorted(
            sampler.head_keys, positives[:, 2] * umls.num_relations + positives[:, 1]
        )
    )
    for before, after, rows in (
        (tail_before, sampler.tail_cache, tail_rows),
        (head_before, sampler.head_cache, head_rows),
    ):
        others = torch.ones(len(before), dtype=torch.bool)
        others[rows] = False
        assert torch.equal(before[others], after[others])
        assert (before[rows] != after[rows]).any(1).all()
        # Importance refresh keeps N1 distinct entities (135 entities, 100 candidates).
        kept = after[rows].sort(1).values
        assert (kept[:, 1:] != kept[:, :-1]).all()


def test_top_refresh_keeps_the_highest_scored_by_brute_force():
    values = [0.3, -1.2, 2.0, 0.7, -0.4, 1.5, -2.2, 0.1, 1.1, -0.8]
    sampler, entities, decoder = _tiny(values, relation=0.5, cache_size=3, candidates=4)
    sampler.refresh_mode = "top"
    positives = torch.tensor([[0, 0, 1], [3, 0, 1], [4, 0, 5], [0, 0, 2]])
    tail_before, head_before = sampler.tail_cache.clone(), sampler.head_cache.clone()
    generator = torch.Generator().manual_seed(7)
    # The refresh's first draw is the N2 offered entities, tail queries then head queries.
    offered = torch.randint(
        10, (3 + 3, 4), generator=torch.Generator().set_state(generator.get_state())
    )
    sampler.refresh(_step(positives, entities, decoder, generator))

    queries = [(0, False), (3, False), (4, False), (1, True), (2, True), (5, True)]
    tail_rows = torch.searchsorted(sampler.tail_keys, torch.tensor([0, 3, 4]))
    head_rows = torch.searchsorted(sampler.head_keys, torch.tensor([1, 2, 5]))
    old = torch.cat([tail_before[tail_rows], head_before[head_rows]]).tolist()
    new = torch.cat([sampler.tail_cache[tail_rows], sampler.head_cache[head_rows]]).tolist()
    for q, (anchor, _) in enumerate(queries):
        candidates = list(dict.fromkeys(old[q] + offered[q].tolist()))  # distinct, in order
        # DistMult in 1-d, either side: anchor * relation * candidate.
        ranked = sorted(candidates, key=lambda c: -values[anchor] * 0.5 * values[c])
        assert sorted(new[q]) == sorted(ranked[:3]), (q, candidates)


def test_importance_refresh_prefers_high_scores():
    values = [float(v) for v in torch.linspace(-2.0, 2.0, 10)]
    sampler, entities, decoder = _tiny(values, cache_size=3, candidates=10)
    positives = torch.tensor([[9, 0, 8]])  # no cache: the refresh must leave every row alone
    generator = torch.Generator().manual_seed(0)
    tail_before, head_before = sampler.tail_cache.clone(), sampler.head_cache.clone()
    sampler.refresh(_step(positives, entities, decoder, generator))
    assert torch.equal(sampler.tail_cache, tail_before)
    assert torch.equal(sampler.head_cache, head_before)

    # Tail query (4, r): the anchor's value is negative (-2/9), so lower-indexed entities score
    # higher; scaled by 3, the scores of (4, r, c) run from 4 (c = 0) down to -4 (c = 9).
    positives = torch.tensor([[4, 0, 5]])
    row = torch.searchsorted(sampler.tail_keys, torch.tensor([4]))
    kept = torch.zeros(10)
    for _ in range(400):
        sampler.refresh(_step(positives, entities * 3, decoder, generator))
        cache = sampler.tail_cache[row][0]
        assert len(set(cache.tolist())) == 3
        kept += torch.bincount(cache, minlength=10)
    # Measured: 391 364 241 107 45 36 8 5 2 1 for entities 0 to 9.
    assert kept[0] > 300  # the best entity is nearly always kept ...
    assert kept[9] < 20  # ... and the worst rarely
    assert kept[3:].sum() > 50  # but not greedily: lower scores keep a chance


# Blocks of one query, of two (3 candidates of 8 floats each), and of all three.
@pytest.mark.parametrize("block_bytes", [1, 2 * 3 * 8 * 4, 2**30])
def test_candidate_scores_match_the_decoder_on_both_sides(monkeypatch, block_bytes):
    monkeypatch.setitem(gather.GATHER_BLOCK_BYTES, "cpu", block_bytes)
    torch.manual_seed(0)
    for name in ["distmult", "complex", "rotate", "transe"]:
        decoder = DECODERS.get(name)(3, 8)
        sampler = NSCachingSampler(
            6, 3, 2, torch.tensor([[0, 1, 2]]), options=NSCachingOptions(cache_size=2)
        )
        entities = torch.randn(6, 8)
        relations = decoder.relations().detach()
        keys = torch.tensor([0 * 3 + 1, 2 * 3 + 1, 5 * 3 + 2])
        is_head = torch.tensor([False, True, True])
        candidates = torch.tensor([[1, 2, 3], [0, 4, 5], [5, 5, 1]])
        no_positives = torch.zeros(0, 3, dtype=torch.long)
        step = StepContext(no_positives, entities, relations, decoder, torch.Generator())
        scores = sampler.candidate_scores(step, keys, is_head, candidates)
        for q in range(3):
            anchor, r = divmod(int(keys[q]), 3)
            for m in range(3):
                c = int(candidates[q, m])
                if is_head[q]:
                    expected = decoder.score(entities[c], relations[r], entities[anchor])
                else:
                    expected = decoder.score(entities[anchor], relations[r], entities[c])
                assert torch.allclose(scores[q, m], expected, atol=1e-5), name


def test_unknown_queries_fall_back_to_uniform():
    sampler, _, _ = _tiny([0.0] * 10, cache_size=2, candidates=2)
    # (9, r) has no tail cache and (r, 8) no head cache.
    positives = torch.tensor([[9, 0, 8]]).repeat(500, 1)
    _, found = sampler.rows(positives, head_side=False)
    assert not found.any()
    generator = torch.Generator().manual_seed(0)
    for head_replaced in (torch.zeros(500, 40, dtype=torch.bool), torch.ones(500, 40).bool()):
        ids = sampler.draw(StepContext(positives, None, None, None, generator), head_replaced)
        frequency = torch.bincount(ids.reshape(-1), minlength=10).double() / ids.numel()
        assert (frequency - 0.1).abs().max() < 0.01


def test_state_dict_round_trip(umls):
    model, sampler = _build(umls, seed=1)
    _sample(model, sampler, umls.train[:200])  # caches now differ from any fresh init
    state = sampler.state_dict()
    assert set(state) == {"tail_cache", "head_cache"}
    _, other = _build(umls, seed=2)
    assert not torch.equal(other.tail_cache, sampler.tail_cache)
    other.load_state_dict(state)
    assert torch.equal(other.tail_cache, sampler.tail_cache)
    assert torch.equal(other.head_cache, sampler.head_cache)
    positives = umls.train[200:300]
    a, _, _ = _sample(model, sampler, positives, seed=4)
    b, _, _ = _sample(model, other, positives, seed=4)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.head_replaced, b.head_replaced)
    assert torch.equal(other.tail_cache, sampler.tail_cache)


def test_same_seed_same_negatives_and_caches(umls):
    positives = umls.train[:100]
    model, a = _build(umls)
    _, b = _build(umls)
    first, _, _ = _sample(model, a, positives, seed=5)
    second, _, _ = _sample(model, b, positives, seed=5)
    assert torch.equal(first.ids, second.ids)
    assert torch.equal(a.tail_cache, b.tail_cache) and torch.equal(a.head_cache, b.head_cache)


def test_filtering_drops_known_true_negatives(umls, train_set):
    positives = umls.train[:1000]
    # Fill each cache with true answers of its query where there are some, so that unfiltered
    # draws hit many known-true triples and the filtered check below is not vacuous.
    model, sampler = _build(umls)
    tails = umls.train[:, 2]
    rows = torch.searchsorted(
        sampler.tail_keys, umls.train[:, 0] * umls.num_relations + umls.train[:, 1]
    )
    sampler.tail_cache[rows, :25] = tails[:, None]
    unfiltered, _, _ = _sample(model, sampler, positives)
    known = umls.train_known_triples.contains(unfiltered.triples(positives))
    assert known.sum() > 500

    model, sampler = _build(umls, known_triples=umls.train_known_triples, filter_negatives=True)
    sampler.tail_cache[rows, :25] = tails[:, None]
    negatives, _, _ = _sample(model, sampler, positives)
    triples = negatives.triples(positives).reshape(-1, 3).tolist()
    weights = negatives.weights.reshape(-1).tolist()
    for triple, weight in zip(triples, weights, strict=True):
        assert (weight == 0.0) == (tuple(triple) in train_set), triple
    assert torch.allclose(negatives.weights.sum(1), torch.full((1000,), float(K)), atol=1e-4)


def test_bad_arguments_are_refused():
    train = torch.tensor([[0, 0, 1]])
    with pytest.raises(ConfigError, match="refresh"):
        NSCachingSampler(4, 1, 3, train, options=NSCachingOptions(refresh="greedy"))
    with pytest.raises(ConfigError, match="cache-size"):
        NSCachingSampler(4, 1, 3, train, options=NSCachingOptions(cache_size=0))
    with pytest.raises(ConfigError, match="candidates"):
        NSCachingSampler(4, 1, 3, train, options=NSCachingOptions(candidates=0))
    with pytest.raises(ConfigError, match="temperature"):
        NSCachingSampler(4, 1, 3, train, options=NSCachingOptions(temperature=0.0))
    with pytest.raises(ConfigError, match="training triples"):
        NSCachingSampler(4, 1, 3, train[:0])
