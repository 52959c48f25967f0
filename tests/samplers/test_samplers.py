"""The simple samplers on UMLS: shapes, corrupted triples, filtering, popularity, self-adv."""

import pytest
import torch

import dans
from dans.builders import build_model, build_sampler
from dans.data.graph import KnowledgeGraph
from dans.errors import ConfigError
from dans.models import DECODERS
from dans.models.model import score_corrupted
from dans.optim import mark_row_sparse
from dans.samplers import (
    PopularitySampler,
    SelfAdversarialOptions,
    SelfAdversarialSampler,
    StepContext,
    UniformOptions,
    UniformSampler,
)
from dans.samplers.base import Negatives, join_weights

NAMES = ["uniform", "popularity", "self-adv"]
DIM, K = 16, 10


def _build(umls, name, seed=0, **overrides):
    config = dans.TrainConfig(
        encoder="lookup", dim=DIM, negatives=K, device="cpu", **overrides
    ).validate()
    torch.manual_seed(seed)
    model = build_model(config, umls)
    return model, build_sampler(name, config, umls)


def _sample(umls, model, sampler, positives, seed=0):
    entities, relations = model()
    step = _step(positives, seed, entities, relations, model.decoder)
    return sampler.sample(step), entities, relations


def _step(positives, seed=0, entities=None, relations=None, decoder=None):
    """A step's context; a sampler that only draws ids needs no representations."""
    generator = torch.Generator().manual_seed(seed)
    return StepContext(positives, entities, relations, decoder, generator)


def test_builder_makes_the_right_classes(umls):
    classes = {
        "uniform": UniformSampler,
        "popularity": PopularitySampler,
        "self-adv": SelfAdversarialSampler,
    }
    for name, cls in classes.items():
        _, sampler = _build(umls, name)
        assert type(sampler) is cls
        assert sampler.num_entities == umls.num_entities
        assert sampler.num_negatives == K


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_embeddings(umls, name):
    model, sampler = _build(umls, name)
    positives = umls.train[:64]
    negatives, entities, _ = _sample(umls, model, sampler, positives)
    assert negatives.ids.shape == (64, K)
    assert negatives.ids.dtype == torch.long
    assert negatives.head_replaced.shape == (64, K)
    assert negatives.head_replaced.dtype == torch.bool
    assert negatives.embeddings.shape == (64, K, DIM)
    assert torch.equal(negatives.embeddings, entities[negatives.ids])
    assert negatives.ids.min() >= 0 and negatives.ids.max() < umls.num_entities
    if name == "self-adv":
        assert negatives.weights.shape == (64, K)
    else:
        assert negatives.weights is None


@pytest.mark.parametrize("name", NAMES)
def test_corrupted_triples_replace_exactly_one_side(umls, name, one_side_replaced):
    model, sampler = _build(umls, name)
    positives = umls.train[:500]
    negatives, _, _ = _sample(umls, model, sampler, positives)
    assert negatives.triples(positives).shape == (500, K, 3)
    one_side_replaced(positives, negatives)
    # The positives themselves are left alone.
    assert torch.equal(positives, umls.train[:500])


def test_triples_need_ids():
    negatives = dans.Negatives(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no ids"):
        negatives.triples(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_negatives(umls, name):
    model, sampler = _build(umls, name)
    positives = umls.train[:100]
    a, _, _ = _sample(umls, model, sampler, positives, seed=5)
    b, _, _ = _sample(umls, model, sampler, positives, seed=5)
    c, _, _ = _sample(umls, model, sampler, positives, seed=6)
    assert torch.equal(a.ids, b.ids)
    assert torch.equal(a.head_replaced, b.head_replaced)
    if a.weights is not None:
        assert torch.equal(a.weights, b.weights)
    assert not torch.equal(a.ids, c.ids)


@pytest.mark.parametrize("name", NAMES)
def test_filtering_drops_every_known_true_negative(umls, train_set, name):
    positives = umls.train[:1000]
    # Without filtering, the same draws contain known-true triples (UMLS is dense), so the
    # filtered check below is not vacuous.
    model, sampler = _build(umls, name)
    unfiltered, _, _ = _sample(umls, model, sampler, positives)
    unfiltered_known = [
        t in train_set for t in map(tuple, unfiltered.triples(positives).reshape(-1, 3).tolist())
    ]
    assert sum(unfiltered_known) > 20

    model, sampler = _build(umls, name, filter_negatives=True)
    negatives, _, _ = _sample(umls, model, sampler, positives)
    triples = negatives.triples(positives).reshape(-1, 3).tolist()
    weights = negatives.weights.reshape(-1).tolist()
    assert negatives.weights.shape == (1000, K)
    for triple, weight in zip(triples, weights, strict=True):
        is_known = tuple(triple) in train_set
        if is_known:
            assert weight == 0.0, triple
        else:
            assert weight > 0.0, triple
    # Known-true draws are redrawn before being dropped, so far fewer are lost than were drawn
    # (measured: about 1 in 8 survives the 3 redraws on these positives).
    dropped = int((negatives.weights == 0).sum())
    assert 0 < dropped < sum(unfiltered_known) / 3
    # Each positive's kept negatives still average weight 1.
    assert torch.allclose(negatives.weights.sum(1), torch.full((1000,), float(K)), atol=1e-4)


def _tiny_dense_graph():
    # 4 entities, 1 relation; (0, 0, t) is true for t in {0, 1, 2} and (h, 0, 1) for h in
    # {0, 2, 3}: most corruptions of (0, 0, 1) are true, so some survive 3 redraws.
    train = [(0, 0, 0), (0, 0, 1), (0, 0, 2), (2, 0, 1), (3, 0, 1)]
    return KnowledgeGraph(
        entity_names=list("abcd"),
        relation_names=["r"],
        train=torch.tensor(train),
        valid=torch.zeros(0, 3, dtype=torch.long),
        test=torch.zeros(0, 3, dtype=torch.long),
    )


@pytest.mark.parametrize("cls", [UniformSampler, SelfAdversarialSampler])
def test_filtering_weights_when_redraws_run_out(cls):
    graph = _tiny_dense_graph()
    known = {tuple(t) for t in graph.train.tolist()}
    torch.manual_seed(0)
    decoder = DECODERS.get("distmult")(1, 4)
    entities = torch.randn(4, 4) * 2
    sampler = cls(4, 6, known_triples=graph.known_triples, filter_negatives=True)
    positives = torch.tensor([[0, 0, 1]]).repeat(300, 1)
    negatives = sampler.sample(_step(positives, 0, entities, decoder.relations(), decoder))
    triples = negatives.triples(positives)
    is_known = torch.tensor(
        [[tuple(t) in known for t in row] for row in triples.tolist()], dtype=torch.bool
    )
    weights = negatives.weights
    assert is_known.any()  # some known-true negatives survived the redraws
    assert (weights[is_known] == 0).all()
    assert (weights[~is_known] > 0).all()
    some_kept = (~is_known).any(1)
    assert torch.allclose(weights[some_kept].sum(1), torch.full((int(some_kept.sum()),), 6.0))
    assert (weights[~some_kept] == 0).all()
    if cls is UniformSampler:
        # Kept negatives share the weight equally: K / (number kept).
        expected = (~is_known).float() * 6 / (~is_known).sum(1, keepdim=True).clamp_min(1)
        assert torch.allclose(weights, expected)
    else:
        # Kept negatives keep softmax proportions among themselves.
        scores = score_corrupted(
            decoder,
            entities,
            decoder.relations(),
            positives,
            negatives.head_replaced,
            negatives.embeddings,
        )
        masked = torch.where(is_known, -torch.inf, scores.detach())
        expected = torch.softmax(masked, 1).nan_to_num(0.0) * 6
        assert torch.allclose(weights, expected, atol=1e-5)


def test_shared_uniform_draws_are_one_row_of_ids_per_group_and_scored_as_drawn(umls):
    model, sampler = _build(umls, "uniform", uniform_shared_by=4)
    positives = umls.train[:10]  # groups of 4, 4 and 2
    negatives, entities, relations = _sample(umls, model, sampler, positives)
    ids = negatives.ids
    assert negatives.shared_by == 4 and ids.shape == (10, K)
    for group in (ids[0:4], ids[4:8], ids[8:10]):
        assert (group == group[0]).all()
    assert not torch.equal(ids[0], ids[4])
    assert negatives.head_replaced[0:4].float().std() > 0  # each positive picks its sides
    scores = negatives.scores(model.decoder, entities, relations, positives)
    expected = score_corrupted(
        model.decoder, entities, relations, positives, negatives.head_replaced, entities[ids]
    )
    torch.testing.assert_close(scores, expected)


def test_a_known_true_negative_of_a_shared_draw_is_dropped_not_redrawn():
    graph = _tiny_dense_graph()
    known = {tuple(t) for t in graph.train.tolist()}
    sampler = UniformSampler(4, 6, graph.known_triples, True, UniformOptions(shared_by=3))
    positives = torch.tensor([[0, 0, 1]]).repeat(9, 1)
    negatives = sampler.sample(_step(positives, 0, torch.randn(4, 4)))
    assert all((group == group[0]).all() for group in negatives.ids.split(3))
    is_known = torch.tensor(
        [[tuple(t) in known for t in row] for row in negatives.triples(positives).tolist()]
    )
    assert is_known.any() and (negatives.weights[is_known] == 0).all()
    assert (negatives.weights[~is_known] > 0).all()


def test_filtering_needs_known_triples():
    with pytest.raises(ConfigError, match="known-true"):
        UniformSampler(4, 3, filter_negatives=True)
    with pytest.raises(ConfigError, match="negatives"):
        UniformSampler(4, 0)


def test_uniform_draws_every_entity_about_equally(umls):
    _, sampler = _build(umls, "uniform")
    positives = umls.train[:2000]
    head_replaced = torch.zeros(2000, 100, dtype=torch.bool)
    ids = sampler.draw(_step(positives), head_replaced)
    frequency = torch.bincount(ids.reshape(-1), minlength=umls.num_entities).double() / ids.numel()
    assert (frequency > 0).all()
    assert (frequency - 1 / umls.num_entities).abs().max() < 0.002


def test_popularity_frequencies_follow_train_counts(umls):
    model, sampler = _build(umls, "popularity")
    counts = umls.train_entity_counts.double()
    assert counts.sum() == 2 * len(umls.train)
    positives = umls.train[:2000]
    negatives, _, _ = _sample(umls, model, sampler, positives)
    # 2000 x 10 draws would be noisy; draw 200,000 through the sampler's own draw().
    ids = sampler.draw(_step(positives, 1), torch.zeros(2000, 100, dtype=torch.bool))
    frequency = torch.bincount(ids.reshape(-1), minlength=umls.num_entities).double() / ids.numel()
    expected = counts / counts.sum()
    # Binomial standard deviation is at most sqrt(0.05 / 200000) ~ 5e-4.
    assert (frequency - expected).abs().max() < 0.003
    assert frequency.argmax() == expected.argmax() or (
        expected[frequency.argmax()] > 0.9 * expected.max()
    )
    # And not uniform: the most popular entity is drawn far more than 1 / E.
    assert frequency.max() > 3 / umls.num_entities
    assert torch.equal(negatives.embeddings, model.encoder()[negatives.ids])


def test_popularity_never_draws_zero_count_entities():
    counts = torch.tensor([0, 1, 2, 0, 7, 0, 10, 0])  # zero counts first, inside and last
    sampler = PopularitySampler(8, 50, entity_counts=counts)
    step = _step(torch.zeros(4000, 3, dtype=torch.long))
    ids = sampler.draw(step, torch.zeros(4000, 50, dtype=torch.bool))
    frequency = torch.bincount(ids.reshape(-1), minlength=8).double() / ids.numel()
    assert frequency[[0, 3, 5, 7]].tolist() == [0.0, 0.0, 0.0, 0.0]
    expected = counts.double() / counts.sum()
    assert (frequency - expected).abs().max() < 0.01


def test_self_adversarial_weights_by_hand(umls):
    model, sampler = _build(umls, "self-adv", self_adv_alpha=0.5)
    assert sampler.options.alpha == 0.5
    with torch.no_grad():
        model.encoder.embeddings.weight.mul_(8)  # spread the scores out
    positives = umls.train[:20]
    negatives, entities, relations = _sample(umls, model, sampler, positives)
    assert entities.requires_grad
    weights = negatives.weights
    assert not weights.requires_grad and weights.grad_fn is None
    decoder = model.decoder
    expected = torch.zeros(20, K)
    for b, (h, r, t) in enumerate(positives.tolist()):
        scores = []
        for k in range(K):
            c = negatives.ids[b, k].item()
            if negatives.head_replaced[b, k]:
                scores.append(decoder.score(entities[c], relations[r], entities[t]).item())
            else:
                scores.append(decoder.score(entities[h], relations[r], entities[c]).item())
        exp = [torch.exp(torch.tensor(0.5 * s, dtype=torch.float64)).item() for s in scores]
        expected[b] = torch.tensor([K * e / sum(exp) for e in exp])
    assert torch.allclose(weights, expected, atol=1e-4)
    assert torch.allclose(weights.sum(1), torch.full((20,), float(K)), atol=1e-4)
    assert weights.std() > 0.1  # far from uniform, so the check above means something


def test_self_adversarial_refuses_a_bad_alpha():
    with pytest.raises(ConfigError, match="--self-adv-alpha must be greater than 0"):
        SelfAdversarialSampler(4, 3, options=SelfAdversarialOptions(alpha=0.0))


def test_joined_weights_are_renormalised_over_the_whole_row():
    first = torch.tensor([[True, False], [False, False]])
    second = torch.tensor([[False, True], [True, True]])
    joined = join_weights((torch.tensor([[0.0, 2.0], [1.0, 1.0]]), first), (None, second))
    # Row 0: weights (0, 2, 1, 1) sum to 4 over 4 negatives, already averaging 1.
    # Row 1: (1, 1, 1, 1) stays.
    torch.testing.assert_close(joined, torch.tensor([[0.0, 2.0, 1.0, 1.0], [1.0] * 4]))
    assert join_weights((None, first), (None, second)) is None


def test_joined_weights_stay_on_the_negatives_device():
    sides = torch.zeros(2, 3, dtype=torch.bool, device="meta")
    joined = join_weights((None, sides), (torch.ones(2, 1, device="meta"), sides[:, :1]))
    assert joined.device.type == "meta" and joined.shape == (2, 4)


def test_training_filters_against_train_only(umls):
    """Valid and test triples must not steer training: a negative that is true only in valid or
    test keeps its weight (the diversity measures count such false negatives instead)."""
    held_out = torch.cat([umls.valid, umls.test])
    in_train = umls.train_known_triples.contains(held_out)
    unseen = held_out[~in_train][:50]
    assert len(unseen) == 50
    _, sampler = _build(umls, "uniform", filter_negatives=True)
    # Force each draw to be the held-out tail of its positive: every draw is a valid/test triple.
    positives = unseen.clone()
    positives[:, 2] = (unseen[:, 2] + 1) % umls.num_entities
    sampler.draw = lambda step, head_replaced: unseen[:, 2:3].expand(-1, K)
    entities = torch.zeros(umls.num_entities, DIM)
    relations = torch.zeros(umls.num_relations, DIM)
    negatives = sampler.sample(_step(positives, 0, entities, relations))
    tail_replaced = ~negatives.head_replaced
    assert tail_replaced.any()
    assert (negatives.weights[tail_replaced] > 0).all()


@pytest.mark.parametrize("decoder_name", ["distmult", "complex", "rotate"])
@pytest.mark.parametrize("num_entities", [30, 31])
def test_negative_scores_and_gradients_do_not_depend_on_how_they_are_scored(
    decoder_name, num_entities
):
    # 3 negatives a positive: DistMult and ComplEx score a table of 30 rows against every
    # entity and pick, one of 31 rows by gathering its negatives; RotatE always gathers.
    torch.manual_seed(0)
    decoder = DECODERS.get(decoder_name)(4, 6)
    entities = torch.randn(num_entities, 6, requires_grad=True)
    relations = decoder.relation_embeddings.detach().clone().requires_grad_()
    positives = torch.stack(
        [
            torch.randint(num_entities, (5,)),
            torch.randint(4, (5,)),
            torch.randint(num_entities, (5,)),
        ],
        1,
    )
    ids = torch.randint(num_entities, (5, 3))
    ids[0] = ids[0, 0]  # one entity three times in a row
    head_replaced = torch.rand(5, 3) < 0.5
    negatives = Negatives.of_rows(entities, head_replaced, ids)
    fast = negatives.scores(decoder, entities, relations, positives)
    slow = score_corrupted(decoder, entities, relations, positives, head_replaced, entities[ids])
    torch.testing.assert_close(fast, slow)
    upstream = torch.randn(5, 3)
    for fast_grad, slow_grad in zip(
        torch.autograd.grad(fast, [entities, relations], upstream),
        torch.autograd.grad(slow, [entities, relations], upstream),
        strict=True,
    ):
        torch.testing.assert_close(fast_grad, slow_grad)
    # Brute force: each corrupted triple scored on its own.
    triples = negatives.triples(positives)
    one_by_one = decoder.score(
        entities[triples[..., 0]], relations[triples[..., 1]], entities[triples[..., 2]]
    )
    torch.testing.assert_close(fast, one_by_one)


def test_negatives_are_scored_against_the_whole_table_only_for_a_small_bilinear_table(
    monkeypatch,
):
    calls = []
    monkeypatch.setattr(
        DECODERS.get("distmult"),
        "score_corrupted_ids",
        lambda self, *args: calls.append(len(args[-1])) or torch.zeros(2, 3),
    )
    decoder = DECODERS.get("distmult")(2, 4)
    positives = torch.tensor([[0, 1, 2], [3, 0, 4]])
    sides, ids = torch.zeros(2, 3, dtype=torch.bool), torch.ones(2, 3, dtype=torch.long)
    relations = torch.randn(2, 4)
    for rows, table_is_entities, sparse, expected in [
        (30, True, False, [30]),
        (31, True, False, []),
        (30, False, False, []),
        (30, True, True, []),
    ]:
        calls.clear()
        entities = torch.randn(rows, 4)
        if sparse:
            mark_row_sparse(entities)
        table = entities if table_is_entities else entities.clone()
        Negatives.of_rows(table, sides, ids).scores(decoder, entities, relations, positives)
        assert calls == expected


def test_negatives_of_table_rows_gather_their_embeddings_at_first_use(monkeypatch):
    table = torch.randn(6, 4)
    ids = torch.tensor([[0, 5], [2, 2]])
    negatives = Negatives.of_rows(table, torch.zeros(2, 2, dtype=torch.bool), ids)
    gathered = []
    monkeypatch.setattr("dans.samplers.base.gather_rows", lambda t, i: gathered.append(i) or t[i])
    assert gathered == []
    assert torch.equal(negatives.embeddings, table[ids])
    assert torch.equal(negatives.embeddings, table[ids])
    assert len(gathered) == 1
    with pytest.raises(ValueError, match="a table and the ids"):
        Negatives(None, torch.zeros(2, 2, dtype=torch.bool), ids)


def test_negatives_first_read_without_gradient_still_carry_the_tables_gradient():
    table = torch.randn(6, 4, requires_grad=True)
    ids = torch.tensor([[0, 5], [2, 2]])
    negatives = Negatives.of_rows(table, torch.zeros(2, 2, dtype=torch.bool), ids)
    with torch.no_grad():
        negatives.embeddings.sum()
    (grad,) = torch.autograd.grad(negatives.embeddings.sum(), table)
    assert grad[:, 0].tolist() == [1, 0, 2, 0, 0, 1]
