"""The KBGAN sampler: shapes, corrupted triples, the generator's scores, REINFORCE, filtering."""

import math

import pytest
import torch
from torch.testing import assert_close

from dans.errors import ConfigError
from dans.models import DECODERS, gather
from dans.models.context import BuildContext
from dans.models.model import score_corrupted
from dans.samplers import kbgan
from dans.samplers.base import SAMPLERS, StepContext, corrupt
from dans.samplers.kbgan import KBGANOptions, KBGANSampler, _gumbel_argmax, _pick

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, K = 8, 10


def _build(umls, decoder="distmult", seed=0, known=True, filter_negatives=False, **options):
    """A sampler on UMLS, base-model embeddings (E, DIM) that it only reads, and the base
    model's decoder."""
    torch.manual_seed(seed)
    dec = DECODERS.get(decoder)(umls.num_relations, DIM)
    sampler = KBGANSampler(
        umls.num_entities,
        umls.num_relations,
        K,
        umls.train_known_triples if known else None,
        filter_negatives,
        KBGANOptions(**options),
    )
    entities = torch.randn(umls.num_entities, DIM, requires_grad=True)
    return sampler, entities, dec


def _step(positives, entities, decoder, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return StepContext(positives, entities, decoder.relations(), decoder, generator)


def _sample(sampler, positives, entities, decoder, seed=0):
    return sampler.sample(_step(positives, entities, decoder, seed))


def _update(sampler, positives, entities, decoder, seed=0):
    return sampler.update(_step(positives, entities, decoder, seed).detached())


def test_registered_and_built_by_name(umls):
    assert SAMPLERS.get("kbgan") is KBGANSampler
    context = BuildContext(umls, dim=DIM, num_negatives=K, filter_negatives=False, seed=1)
    sampler = SAMPLERS.get("kbgan").from_context(
        context, KBGANOptions(candidates=7, generator_dim=12, temperature=2.0)
    )
    assert sampler.candidates == 7 and sampler.temperature == 2.0
    assert sampler.entity_embeddings.weight.shape == (umls.num_entities, 12)
    assert sampler.relation_embeddings.weight.shape == (umls.num_relations, 12)
    assert sampler.skipped_steps == {"generator": 0}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"candidates": 0}, "candidates"),
        ({"generator_dim": 0}, "generator-dim"),
        ({"generator_lr": 0.0}, "generator-lr"),
        ({"temperature": 0.0}, "temperature"),
        ({"baseline_momentum": 1.0}, "momentum"),
        ({"known": False, "filter_negatives": True}, "known-true"),
    ],
)
def test_refuses_bad_settings(umls, overrides, match):
    with pytest.raises(ConfigError, match=match):
        _build(umls, **overrides)


def test_shapes_and_embeddings(umls):
    sampler, entities, decoder = _build(umls)
    positives = umls.train[:64]
    negatives = _sample(sampler, positives, entities, decoder)
    assert negatives.ids.shape == negatives.head_replaced.shape == (64, K)
    assert negatives.ids.dtype == torch.long and negatives.head_replaced.dtype == torch.bool
    assert negatives.embeddings.shape == (64, K, DIM)
    assert torch.equal(negatives.embeddings, entities[negatives.ids])
    # The base model's step differentiates through the gathered embeddings.
    assert negatives.embeddings.requires_grad
    assert negatives.ids.min() >= 0 and negatives.ids.max() < umls.num_entities
    assert negatives.weights is None


def test_corrupted_triples_replace_exactly_one_side(umls, one_side_replaced):
    sampler, entities, decoder = _build(umls)
    positives = umls.train[:500]
    negatives = _sample(sampler, positives, entities, decoder)
    one_side_replaced(positives, negatives)
    assert torch.equal(positives, umls.train[:500])


def test_same_seed_same_negatives(umls):
    sampler, entities, decoder = _build(umls)
    positives = umls.train[:100]
    a, b, c = (_sample(sampler, positives, entities, decoder, seed) for seed in (5, 5, 6))
    assert torch.equal(a.ids, b.ids) and torch.equal(a.head_replaced, b.head_replaced)
    assert not torch.equal(a.ids, c.ids)


@pytest.mark.parametrize("head", [False, True])
def test_generator_logits_by_hand(umls, head):
    """DistMult on the generator's own embeddings, anchored on the kept side, over T."""
    sampler, _, _ = _build(umls, temperature=2.0)
    positives = umls.train[:3]
    head_replaced = torch.full((3, 2), head)
    candidates = torch.tensor([[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]], [[1, 1, 2]] * 2])
    logits = sampler.generator_logits(positives, head_replaced, candidates)
    e, r = sampler.entity_embeddings.weight, sampler.relation_embeddings.weight
    anchor = positives[:, 2] if head else positives[:, 0]
    expected = (e[anchor][:, None, None] * r[positives[:, 1]][:, None, None] * e[candidates]).sum(
        -1
    )
    assert_close(logits, expected / 2.0)


@pytest.mark.parametrize("block_bytes", [1, 2 * 6 * 4 * 8, 2**30])
def test_candidate_scores_and_their_gradients_in_blocks_match_one_product(monkeypatch, block_bytes):
    """Blocks of one positive, of two (6 ids of 4 float64 each), and of all of them: the scores
    and both gradients are those of one batched product over every gathered embedding, repeated
    ids included."""
    monkeypatch.setitem(gather.GATHER_BLOCK_BYTES, "cpu", block_bytes)
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(7, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    queries = torch.randn(5, 4, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(7, (5, 6), generator=generator)
    weights = torch.randn(5, 6, 2, generator=generator, dtype=torch.float64)
    (kbgan._CandidateScores.apply(table, queries, ids) * weights).sum().backward()
    got = table.grad, queries.grad
    table.grad = queries.grad = None
    (torch.bmm(table[ids], queries) * weights).sum().backward()
    assert_close(got, (table.grad, queries.grad))
    assert torch.autograd.gradcheck(
        lambda t, q: kbgan._CandidateScores.apply(t, q, ids), (table, queries)
    )


def test_gumbel_draws_follow_the_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0, -torch.inf, 1.0]]).expand(20000, -1)
    choice = _gumbel_argmax(logits, torch.Generator().manual_seed(0))
    frequency = torch.bincount(choice, minlength=5).double() / len(choice)
    expected = torch.softmax(logits[0].double(), 0)
    assert frequency[3] == 0.0  # a masked candidate is never drawn
    # Binomial standard deviation is at most 0.5 / sqrt(20000) ~ 0.0035.
    assert (frequency - expected).abs().max() < 0.015


def test_draw_picks_among_its_candidates_by_the_generator(umls):
    """At a low temperature each negative is its candidate set's highest-scoring entity."""
    sampler, _, _ = _build(umls, temperature=1e-4)
    positives = umls.train[:200]
    head_replaced = torch.rand(200, K, generator=torch.Generator().manual_seed(1)) < 0.5
    step = StepContext(positives, None, None, None, torch.Generator().manual_seed(0))
    ids = sampler.draw(step, head_replaced)
    # The same seed replays the same candidates: randint first, then the Gumbel noise.
    candidates, logits = sampler.propose(positives, head_replaced, torch.Generator().manual_seed(0))
    assert candidates.shape == logits.shape == (200, K, 20)
    best = candidates.gather(2, logits.argmax(-1, keepdim=True)).squeeze(2)
    assert (ids == best).double().mean() > 0.99  # the rest: near ties, settled by the noise
    # Every pick is one of its candidates, with a (tempered) logit close to the set's best.
    is_pick = candidates == ids[..., None]
    assert is_pick.any(-1).all()
    pick_logit = logits.masked_fill(~is_pick, -torch.inf).amax(-1)
    assert (logits.amax(-1) - pick_logit).max() < 30
    # Not vacuous: the favourite is usually not the set's first candidate.
    assert (best != candidates[..., 0]).double().mean() > 0.5


def _toy(seed=0, **overrides):
    """10 entities, one relation; the base model scores entity 7 far above the rest on both
    sides, so its reward dominates."""
    torch.manual_seed(seed)
    decoder = DECODERS.get("distmult")(1, 4)
    with torch.no_grad():
        decoder.relation_embeddings.fill_(1.0)
    entities = 0.1 * torch.randn(10, 4)
    entities[:7] += 1.0
    entities[7] = 3.0
    values = {"candidates": 5, "generator_dim": 6, "generator_lr": 0.05, **overrides}
    sampler = KBGANSampler(10, 1, 4, options=KBGANOptions(**values))
    positives = torch.tensor([[0, 0, 1], [2, 0, 3], [4, 0, 5], [1, 0, 6]]).repeat(8, 1)
    generator = torch.Generator().manual_seed(0)
    step = StepContext(positives, entities, decoder.relations().detach(), decoder, generator)
    return sampler, step


def _probability_of(sampler, positives, entity):
    """Mean generator probability of ``entity`` over all entities, both sides of each positive."""
    every = torch.arange(sampler.num_entities)[None, None].expand(len(positives), 2, -1)
    sides = torch.tensor([[False, True]]).expand(len(positives), -1)
    with torch.no_grad():
        probs = torch.softmax(sampler.generator_logits(positives, sides, every), -1)
    return probs[..., entity].mean().item()


def test_reinforce_raises_the_probability_of_high_reward_negatives():
    sampler, step = _toy()
    positives = step.positives
    before = _probability_of(sampler, positives, 7)
    assert 0.05 < before < 0.15  # close to uniform at the start
    for _ in range(60):
        logs = sampler.update(step)
    after = _probability_of(sampler, positives, 7)
    assert after > 0.6, (before, after)
    # And the sampler now draws it far more often than a uniform one would.
    negatives = sampler.sample(step)
    assert (negatives.ids == 7).double().mean().item() > 0.4
    assert logs["generator_entropy"] < math.log(5)
    assert sampler.skipped_steps == {"generator": 0}


def test_baseline_is_a_moving_average_of_the_mean_reward():
    sampler, step = _toy(baseline_momentum=0.75)
    assert sampler.baseline.item() == 0.0 and sampler.updates.item() == 0
    first = sampler.update(step)
    # The first batch's mean reward starts the average.
    assert first["generator_baseline"] == pytest.approx(first["generator_reward"])
    assert sampler.baseline.item() == pytest.approx(first["generator_reward"])
    second = sampler.update(step)
    expected = 0.75 * first["generator_reward"] + 0.25 * second["generator_reward"]
    assert second["generator_baseline"] == pytest.approx(expected, rel=1e-5)
    assert sampler.updates.item() == 2
    # Over many batches it follows the rewards, which rise as the generator learns.
    for _ in range(40):
        logs = sampler.update(step)
    assert logs["generator_baseline"] > first["generator_reward"] + 1.0
    assert abs(logs["generator_baseline"] - logs["generator_reward"]) < 2.0


def test_rewards_are_the_base_model_logits(umls, monkeypatch):
    """The reward of each drawn negative is score_corrupted on the base model, head side through
    the decoder's inverse (complex is not symmetric)."""
    sampler, entities, decoder = _build(umls, decoder="complex")
    seen = {}

    def spy_pick(ids, choice):
        seen["ids"] = _pick(ids, choice)
        return seen["ids"]

    def spy_score(decoder, ents, rels, positives, head_replaced, replacing):
        seen.update(
            head_replaced=head_replaced,
            scores=score_corrupted(decoder, ents, rels, positives, head_replaced, replacing),
        )
        return seen["scores"]

    monkeypatch.setattr("dans.samplers.kbgan._pick", spy_pick)
    monkeypatch.setattr("dans.samplers.kbgan.score_corrupted", spy_score)
    positives = umls.train[:30]
    logs = _update(sampler, positives, entities, decoder)
    head_replaced = seen["head_replaced"]
    assert head_replaced.any() and (~head_replaced).any()
    triples = corrupt(positives, head_replaced, seen["ids"])
    e, r = entities.detach(), decoder.relations().detach()
    by_hand = decoder.score(e[triples[..., 0]], r[triples[..., 1]], e[triples[..., 2]])
    assert_close(seen["scores"], by_hand)
    assert logs["generator_reward"] == pytest.approx(by_hand.mean().item(), rel=1e-5)


def test_update_changes_the_generator_only(umls):
    sampler, entities, decoder = _build(umls)
    relations = decoder.relations()
    before = {k: v.clone() for k, v in sampler.state_dict().items()}
    entities_before = entities.detach().clone()
    relations_before = relations.detach().clone()
    positives = umls.train[:200]
    # Passed without detaching: the sampler must still leave them and their gradients alone.
    generator = torch.Generator().manual_seed(0)
    logs = sampler.update(StepContext(positives, entities, relations, decoder, generator))
    assert set(logs) == {
        "generator_loss",
        "generator_reward",
        "generator_baseline",
        "generator_entropy",
    }
    assert all(math.isfinite(v) for v in logs.values())
    after = sampler.state_dict()
    assert not torch.equal(after["entity_embeddings.weight"], before["entity_embeddings.weight"])
    assert not torch.equal(
        after["relation_embeddings.weight"], before["relation_embeddings.weight"]
    )
    assert torch.equal(entities.detach(), entities_before)
    assert torch.equal(relations.detach(), relations_before)
    assert entities.grad is None and decoder.relation_embeddings.grad is None
    assert not any(name.startswith("_decoder") for name in after)


def test_filtering_drops_every_known_true_negative(umls, train_set):
    positives = umls.train[:500]
    sampler, entities, decoder = _build(umls)
    unfiltered = _sample(sampler, positives, entities, decoder)
    known = umls.train_known_triples.contains(unfiltered.triples(positives))
    assert known.sum() > 20  # UMLS is dense: not vacuous

    sampler, entities, decoder = _build(umls, filter_negatives=True)
    # Train it first: the masked candidates must also keep it from learning to pick true triples.
    for seed in range(2):
        _update(sampler, positives, entities, decoder, seed)
    negatives = _sample(sampler, positives, entities, decoder)
    assert negatives.weights.shape == (500, K)
    triples = negatives.triples(positives).reshape(-1, 3).tolist()
    for triple, weight in zip(triples, negatives.weights.reshape(-1).tolist(), strict=True):
        assert weight == 0.0 or tuple(triple) not in train_set
    # Masking the candidates leaves almost nothing for the base class to drop.
    assert (negatives.weights == 0).double().mean().item() < 0.01


def test_state_dict_round_trip(umls):
    sampler, entities, decoder = _build(umls)
    positives = umls.train[:100]
    for seed in range(2):
        _update(sampler, positives, entities, decoder, seed)
    state = sampler.state_dict()
    assert {"entity_embeddings.weight", "relation_embeddings.weight", "baseline", "updates"} <= set(
        state
    )
    assert state["updates"].item() == 2 and state["baseline"].item() != 0.0
    fresh, _, _ = _build(umls, seed=1)
    assert not torch.equal(fresh.entity_embeddings.weight, sampler.entity_embeddings.weight)
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key
    a = _sample(sampler, positives, entities, decoder, seed=3)
    b = _sample(fresh, positives, entities, decoder, seed=3)
    assert torch.equal(a.ids, b.ids)


def test_nan_reward_is_skipped_and_counted(umls):
    sampler, entities, decoder = _build(umls)
    positives = umls.train[:100]
    _update(sampler, positives, entities, decoder, 0)
    before = {k: v.clone() for k, v in sampler.state_dict().items()}
    logs = _update(sampler, positives, entities * torch.nan, decoder, 1)
    assert math.isnan(logs["generator_reward"]) and math.isnan(logs["generator_loss"])
    assert sampler.skipped_steps == {"generator": 1}
    for key, value in sampler.state_dict().items():
        assert torch.equal(value, before[key]), key  # baseline and update count included
    # Training goes on from where it was.
    logs = _update(sampler, positives, entities, decoder, 2)
    assert math.isfinite(logs["generator_loss"])
    assert sampler.skipped_steps == {"generator": 1}
    assert sampler.updates.item() == 2
    assert not torch.equal(sampler.entity_embeddings.weight, before["entity_embeddings.weight"])
