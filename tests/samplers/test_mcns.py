"""MCNS: shapes and sides on UMLS, the chain's target distribution checked by brute force on tiny
graphs (with the non-symmetric proposal correction), persistent chains, filtering."""

import pytest
import torch

import dans
from dans.builders import build_model
from dans.errors import ConfigError
from dans.models import DECODERS
from dans.samplers import StepContext
from dans.samplers.mcns import MCNSOptions, MCNSSampler, neighbour_lists

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, K = 16, 10


def _umls_sampler(umls, seed=0, filter_negatives=False, **options):
    config = dans.TrainConfig(encoder="lookup", dim=DIM, negatives=K, device="cpu").validate()
    torch.manual_seed(seed)
    model = build_model(config, umls)
    sampler = MCNSSampler(
        num_entities=umls.num_entities,
        num_negatives=K,
        train_triples=umls.train,
        known_triples=umls.train_known_triples,
        filter_negatives=filter_negatives,
        options=MCNSOptions(**options),
    )
    return model, sampler


def _sample(model, sampler, positives, seed=0):
    entities, relations = model()
    generator = torch.Generator().manual_seed(seed)
    step = StepContext(positives, entities, relations, model.decoder, generator)
    return sampler.sample(step), entities, relations


def test_registered_under_its_name():
    assert dans.samplers.base.SAMPLERS.get("mcns") is MCNSSampler


def test_shapes_sides_and_gradients(umls, one_side_replaced):
    model, sampler = _umls_sampler(umls)
    positives = umls.train[:500]
    negatives, entities, _ = _sample(model, sampler, positives)
    assert negatives.ids.shape == (500, K) and negatives.ids.dtype == torch.long
    assert negatives.head_replaced.shape == (500, K)
    assert negatives.embeddings.shape == (500, K, DIM)
    assert negatives.weights is None
    assert negatives.ids.min() >= 0 and negatives.ids.max() < umls.num_entities
    assert torch.equal(negatives.embeddings, entities[negatives.ids])
    one_side_replaced(positives, negatives)
    # The chain itself runs without gradient; the negatives' embeddings are a gather of the
    # entities, so the loss reaches the base model as with uniform negatives.
    assert negatives.embeddings.requires_grad
    negatives.embeddings.sum().backward()
    grad = model.encoder.embeddings.weight.grad
    touched = torch.zeros(umls.num_entities, dtype=torch.bool)
    touched[negatives.ids.reshape(-1)] = True
    assert (grad[touched].abs().sum(1) > 0).all() and (grad[~touched] == 0).all()


def test_same_seed_same_negatives(umls):
    positives = umls.train[:200]
    runs = []
    for seed in (3, 3, 4):
        model, sampler = _umls_sampler(umls)
        runs.append(_sample(model, sampler, positives, seed=seed)[0])
    assert torch.equal(runs[0].ids, runs[1].ids)
    assert torch.equal(runs[0].head_replaced, runs[1].head_replaced)
    assert not torch.equal(runs[0].ids, runs[2].ids)


def test_chains_persist_across_calls_and_in_state_dict(umls):
    model, sampler = _umls_sampler(umls)
    assert (sampler.states == -1).all()
    state = sampler.state_dict()
    assert set(state) == {"states"}  # the neighbour graph is rebuilt from train, not saved
    assert state["states"].shape == (2, umls.num_entities)

    calls = []
    walk = sampler.walk

    def recording_walk(decoder, anchors, queries, start, entities, steps, generator):
        path = walk(decoder, anchors, queries, start, entities, steps, generator)
        calls.append((start.clone(), path.clone()))
        return path

    sampler.walk = recording_walk
    positives = umls.train[:300]
    _sample(model, sampler, positives, seed=0)
    _sample(model, sampler, positives, seed=1)
    (_, first_path), (second_start, _) = calls
    # Chain i is the tail side of positive i (keyed by its head) for i < B, then the head side
    # (keyed by its tail); the last chain of a key in the first call starts that key's chains in
    # the second.
    keys = torch.cat([positives[:, 0], positives[:, 2] + umls.num_entities])
    last = {key: i for i, key in enumerate(keys.tolist())}
    for i, key in enumerate(keys.tolist()):
        assert second_start[i] == first_path[last[key], -1]
        assert sampler.states.view(-1)[key] >= 0
    used = torch.zeros(2 * umls.num_entities, dtype=torch.bool)
    used[keys] = True
    assert (sampler.states.view(-1)[~used] == -1).all()

    # A checkpointed sampler continues the same chains: same draws from the same seed.
    restored = MCNSSampler(umls.num_entities, K, umls.train, umls.train_known_triples)
    restored.load_state_dict(sampler.state_dict())
    sampler.walk = walk
    a = _sample(model, sampler, positives, seed=2)[0]
    b = _sample(model, restored, positives, seed=2)[0]
    assert torch.equal(a.ids, b.ids)
    assert torch.equal(sampler.states, restored.states)


def test_filtering_drops_every_known_true_negative(umls, train_set):
    positives = umls.train[:1000]
    model, sampler = _umls_sampler(umls)
    unfiltered = _sample(model, sampler, positives)[0]
    unfiltered_known = sum(
        t in train_set for t in map(tuple, unfiltered.triples(positives).reshape(-1, 3).tolist())
    )
    assert unfiltered_known > 20  # UMLS is dense: the check below is not vacuous

    model, sampler = _umls_sampler(umls, filter_negatives=True)
    negatives = _sample(model, sampler, positives)[0]
    triples = negatives.triples(positives).reshape(-1, 3).tolist()
    weights = negatives.weights.reshape(-1).tolist()
    for triple, weight in zip(triples, weights, strict=True):
        assert (weight == 0.0) == (tuple(triple) in train_set), triple
    dropped = int((negatives.weights == 0).sum())
    assert dropped < unfiltered_known / 2  # redrawn from the continued chains before dropping
    assert torch.allclose(negatives.weights.sum(1), torch.full((1000,), float(K)), atol=1e-4)


def test_bad_arguments_are_refused():
    triples = torch.tensor([[0, 0, 1]])
    with pytest.raises(ConfigError, match="alpha"):
        MCNSSampler(3, 2, triples, options=MCNSOptions(alpha=-0.5))
    with pytest.raises(ConfigError, match="uniform-share"):
        MCNSSampler(3, 2, triples, options=MCNSOptions(uniform_share=0.0))
    with pytest.raises(ConfigError, match="burn-in"):
        MCNSSampler(3, 2, triples, options=MCNSOptions(burn_in=-1))
    with pytest.raises(ConfigError, match="known-true"):
        MCNSSampler(3, 2, triples, filter_negatives=True)


# A star: hub 0 with leaves 1..5 (degrees 5 and 1, so the neighbour move is far from symmetric);
# 6 and 7 have no triple and 8 only a self-loop, so all three have no neighbour.
STAR = torch.tensor([[0, 0, leaf] for leaf in range(1, 6)] + [[8, 0, 8]])
STAR_ENTITIES = 9


def test_neighbour_lists_are_undirected_without_loops():
    offsets, neighbours = neighbour_lists(torch.cat([STAR, STAR[:2].flip(1)]), STAR_ENTITIES)
    assert offsets.tolist() == [0, 5, 6, 7, 8, 9, 10, 10, 10, 10]
    assert neighbours.tolist() == [1, 2, 3, 4, 5, 0, 0, 0, 0, 0]


def _dense_proposal(share, triples=STAR, e=STAR_ENTITIES):
    """q(y | x) as an (E, E) matrix, written out from the definition."""
    adjacency = torch.zeros(e, e, dtype=torch.float64)
    for h, _, t in triples.tolist():
        if h != t:
            adjacency[h, t] = adjacency[t, h] = 1
    degree = adjacency.sum(1, keepdim=True)
    neighbour = torch.where(degree > 0, adjacency / degree.clamp_min(1), 1.0 / e)
    return share / e + (1 - share) * neighbour


@pytest.mark.parametrize("share", [0.5, 0.2])
def test_proposal_frequencies_and_density(share):
    sampler = MCNSSampler(STAR_ENTITIES, 2, STAR, options=MCNSOptions(uniform_share=share))
    expected = _dense_proposal(share)
    assert torch.allclose(expected.sum(1), torch.ones(STAR_ENTITIES, dtype=torch.float64))
    x = torch.arange(STAR_ENTITIES).repeat_interleave(STAR_ENTITIES)
    y = torch.arange(STAR_ENTITIES).repeat(STAR_ENTITIES)
    ratio = sampler.log_proposal_ratio(x, y).double().view(STAR_ENTITIES, STAR_ENTITIES)
    assert torch.allclose(ratio, (expected.T / expected).log(), atol=1e-5)
    # Empirical proposals from each state follow q(. | x), isolated states included.
    draws = 20000
    current = torch.arange(STAR_ENTITIES).repeat_interleave(draws)
    proposal = sampler.propose(current, torch.Generator().manual_seed(0))
    assert proposal.min() >= 0 and proposal.max() < STAR_ENTITIES
    counts = torch.zeros(STAR_ENTITIES, STAR_ENTITIES, dtype=torch.float64)
    counts.index_put_((current, proposal), torch.ones(len(current), dtype=torch.float64), True)
    assert (counts / draws - expected).abs().max() < 0.015


def _controlled_decoder():
    # ComplEx, so that inverse(r) != r and the head side's target differs from the tail side's.
    torch.manual_seed(0)
    decoder = DECODERS.get("complex")(1, 4)
    entities = torch.randn(STAR_ENTITIES, 4)
    return decoder, entities


def _target(decoder, entities, alpha, anchor, predict_head):
    with torch.no_grad():
        relation = decoder.relations()[:1]
        if predict_head:
            scores = decoder.score_all_heads(relation, entities[anchor][None], entities)
        else:
            scores = decoder.score_all_tails(entities[anchor][None], relation, entities)
    return torch.softmax(alpha * scores[0].double(), 0)


def _empirical(ids, e=STAR_ENTITIES):
    return torch.bincount(ids.reshape(-1), minlength=e).double() / ids.numel()


def _draw_star(sampler, decoder, entities, positives, calls, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tails, heads = [], []
    for _ in range(calls):
        step = StepContext(positives, entities, decoder.relations(), decoder, generator)
        negatives = sampler.sample(step)
        tails.append(negatives.ids[~negatives.head_replaced])
        heads.append(negatives.ids[negatives.head_replaced])
    return torch.cat(tails), torch.cat(heads)


@pytest.mark.parametrize("triples", [STAR, torch.tensor([[8, 0, 8]])], ids=["star", "no-edges"])
def test_draws_follow_the_target(triples):
    """Many chains, continued over calls, against softmax(alpha * score) computed over every
    entity: both sides, with isolated entities and (in the star) very unequal degrees."""
    decoder, entities = _controlled_decoder()
    alpha = 0.75
    sampler = MCNSSampler(STAR_ENTITIES, 10, triples, options=MCNSOptions(alpha=alpha, burn_in=10))
    # Each positive its own chains: anchors 1 (a leaf) for the tail side, 6 (isolated) for the head
    # side; the keys repeat, so every call restarts all chains from one remembered state per side.
    positives = torch.tensor([[1, 0, 6]]).repeat(2000, 1)
    tails, heads = _draw_star(sampler, decoder, entities, positives, calls=3)
    for ids, anchor, predict_head in ((tails, 1, False), (heads, 6, True)):
        target = _target(decoder, entities, alpha, anchor, predict_head)
        assert target.max() > 3 * target.min()  # far from uniform
        total_variation = 0.5 * (_empirical(ids) - target).abs().sum().item()
        assert total_variation < 0.03, (predict_head, total_variation)


def test_without_the_proposal_correction_draws_are_biased(monkeypatch):
    """The check above can tell: dropping q(x|y) / q(y|x) pulls the chains to the hub."""
    decoder, entities = _controlled_decoder()
    alpha = 0.1  # a nearly flat target, so the degree bias shows
    sampler = MCNSSampler(
        STAR_ENTITIES, 10, STAR, options=MCNSOptions(alpha=alpha, uniform_share=0.2)
    )
    positives = torch.tensor([[1, 0, 6]]).repeat(2000, 1)
    target = _target(decoder, entities, alpha, 1, False)
    tails, _ = _draw_star(sampler, decoder, entities, positives, calls=3)
    corrected = 0.5 * (_empirical(tails) - target).abs().sum().item()
    monkeypatch.setattr(sampler, "log_proposal_ratio", lambda x, y: torch.zeros(len(x)))
    sampler.states.fill_(-1)
    tails, _ = _draw_star(sampler, decoder, entities, positives, calls=3)
    naive = 0.5 * (_empirical(tails) - target).abs().sum().item()
    assert corrected < 0.03 < 0.1 < naive, (corrected, naive)
    assert _empirical(tails)[0] > 1.5 * target[0]  # the hub
