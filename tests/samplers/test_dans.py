"""The DANS sampler on UMLS: composition, side conditioning, FiLM, training phases, snap mode."""

import csv
import math

import pytest
import torch
from torch.testing import assert_close

import dans
from dans.builders import build_model, build_sampler
from dans.data.graph import KnownTriples
from dans.errors import ConfigError
from dans.models import DECODERS
from dans.samplers import DANSOptions, DANSSampler, StepContext
from dans.samplers.dans.networks import Pathway, film_penalty
from dans.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, K = 8, 20
CPU = torch.device("cpu")


def _config(**overrides):
    values = {"encoder": "lookup", "dim": DIM, "negatives": K, "batch_size": 64, "device": "cpu"}
    return dans.TrainConfig(**{**values, **overrides}).validate()


def _build(umls, seed=0, **overrides):
    config = _config(**overrides)
    torch.manual_seed(seed)
    model = build_model(config, umls)
    return config, model, build_sampler("dans", config, umls)


def _step(model, positives, seed=0):
    entities, relations = model()
    generator = torch.Generator().manual_seed(seed)
    return StepContext(positives, entities, relations, model.decoder, generator)


def _sample(model, sampler, positives, seed=0):
    step = _step(model, positives, seed)
    return sampler.sample(step), step.entities, step.relations


def _columns(sampler):
    """Each pathway's columns among the negatives, G_E's first."""
    columns, start = {}, 0
    for name, count in sampler.counts.items():
        columns[name] = slice(start, start + count)
        start += count
    return columns


def _snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _unchanged(module, snapshot):
    return all(torch.equal(p, snapshot[name]) for name, p in module.named_parameters())


# --------------------------------------------------------------------------------------------
# How the negatives are made up.
# --------------------------------------------------------------------------------------------
BOTH_GROUPS = {
    "entity_pathway": slice(0, 5),
    "relation_pathway": slice(5, 10),
    "generated": slice(0, 10),
    "uniform": slice(10, 20),
}
COMPOSITIONS = [
    ({}, {"entity": 5, "relation": 5}, 10, BOTH_GROUPS),
    (
        {"dans_pathways": "entity"},
        {"entity": 10},
        10,
        {"entity_pathway": slice(0, 10), "generated": slice(0, 10), "uniform": slice(10, 20)},
    ),
    (
        {"dans_pathways": "relation"},
        {"relation": 10},
        10,
        {"relation_pathway": slice(0, 10), "generated": slice(0, 10), "uniform": slice(10, 20)},
    ),
    # As the authors' code runs: both pathways train, G_R's fakes alone are negatives.
    (
        {"dans_negative_pathways": "relation"},
        {"relation": 10},
        10,
        {"relation_pathway": slice(0, 10), "generated": slice(0, 10), "uniform": slice(10, 20)},
    ),
    # ceil(0.5 * 5) = 3 generated, G_E takes the odd one; 2 uniform.
    (
        {"negatives": 5},
        {"entity": 2, "relation": 1},
        2,
        {
            "entity_pathway": slice(0, 2),
            "relation_pathway": slice(2, 3),
            "generated": slice(0, 3),
            "uniform": slice(3, 5),
        },
    ),
    (
        {"dans_generated_share": 1.0},
        {"entity": 10, "relation": 10},
        0,
        {
            "entity_pathway": slice(0, 10),
            "relation_pathway": slice(10, 20),
            "generated": slice(0, 20),
        },
    ),
]


@pytest.mark.parametrize(("overrides", "counts", "uniform", "groups"), COMPOSITIONS)
def test_composition_and_shapes(umls, overrides, counts, uniform, groups):
    _, model, sampler = _build(umls, **overrides)
    assert sampler.counts == counts
    assert sampler.num_uniform == uniform
    negatives_per_positive = sum(counts.values()) + uniform
    positives = umls.train[:1000]
    negatives, _, _ = _sample(model, sampler, positives)
    assert negatives.embeddings.shape == (1000, negatives_per_positive, DIM)
    assert negatives.head_replaced.shape == (1000, negatives_per_positive)
    assert negatives.head_replaced.dtype == torch.bool  # one side per negative, never both
    assert negatives.ids is None and negatives.weights is None
    assert negatives.groups == groups
    # Each group replaces the head about half the time (binomial sd <= 0.5 / sqrt(1000)).
    for name, columns in groups.items():
        share = negatives.head_replaced[:, columns].double().mean().item()
        assert 0.4 < share < 0.6, name


# --------------------------------------------------------------------------------------------
# Conditioning: which vector each generated negative is made from.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decoder", ["distmult", "complex", "rotate", "transe"])
def test_generated_negatives_are_conditioned_on_the_kept_side(umls, decoder):
    """With no noise and BatchNorm on running statistics, each fake is a function of its
    conditioning vector alone, so it can be recomputed from the vector the paper names."""
    _, model, sampler = _build(umls, decoder=decoder, dans_noise_sigma=0.0)
    sampler.eval()
    positives = umls.train[:50]
    with torch.no_grad():
        negatives, entities, relations = _sample(model, sampler, positives)
    dec = model.decoder
    h, r, t = entities[positives[:, 0]], relations[positives[:, 1]], entities[positives[:, 2]]
    conditions = {
        # (tail replaced, head replaced)
        "entity": (h, t),
        "relation": (dec.compose(h, r), dec.compose(t, dec.inverse(r))),
    }
    for name, columns in _columns(sampler).items():
        head = negatives.head_replaced[:, columns, None]
        tail_side, head_side = (c[:, None] for c in conditions[name])
        count = head.shape[1]

        def pathway(right, wrong, name=name, head=head, count=count):
            vectors = torch.where(head, right, wrong).reshape(-1, DIM)
            with torch.no_grad():
                out = sampler.pathways[name](
                    vectors, torch.arange(len(vectors)), 0.0, torch.Generator()
                )
            return out.view(len(positives), count, DIM)

        generated = negatives.embeddings[:, columns]
        assert_close(generated, pathway(head_side, tail_side))
        # Not vacuous: conditioning on the other side gives other vectors.
        assert not torch.allclose(generated, pathway(tail_side, head_side), atol=1e-4)


# --------------------------------------------------------------------------------------------
# FiLM.
# --------------------------------------------------------------------------------------------
def test_film_at_identity_is_the_plain_mlp():
    """alpha = 1, beta = 0 (a zero modulation) leaves each hidden layer's output as it was."""
    torch.manual_seed(0)
    layers, dim = 2, 6
    film, plain = Pathway(dim, layers, film=True), Pathway(dim, layers, film=False)
    missing, unexpected = plain.load_state_dict(film.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("film.") for k in unexpected)
    conditions = torch.randn(4, dim)
    index = torch.tensor([0, 1, 1, 2, 3, 3, 0, 2])

    def run(pathway, modulation=None):
        generator = torch.Generator().manual_seed(3)
        return pathway(conditions, index, 0.1, generator, modulation)

    expected = run(plain)
    assert_close(run(film, torch.zeros(2 * layers, 4, dim)), expected)
    # A modulation that differs between rows changes the output (a constant one would be
    # undone by BatchNorm's batch statistics).
    modulation = 0.5 * torch.randn(2 * layers, 4, dim)
    assert not torch.allclose(run(film, modulation), expected, atol=1e-3)
    # No modulation given: the pathway computes its own FiLM factors.
    assert_close(run(film), run(film, film.modulation(conditions)))


def test_film_penalty_by_hand():
    modulation = torch.arange(24.0).view(4, 3, 2) / 10  # 2 layers x (alpha - 1, beta), 3 rows
    per_row = [
        sum(modulation[f, n, i].item() ** 2 for f in range(4) for i in range(2)) for n in range(3)
    ]
    assert film_penalty(modulation).item() == pytest.approx(sum(per_row) / 3)


# --------------------------------------------------------------------------------------------
# The three training phases each change only their own parameters.
# --------------------------------------------------------------------------------------------
def test_generator_and_discriminator_steps_touch_only_their_own_parameters(umls):
    _, model, sampler = _build(umls)
    positives = umls.train[:64]
    step = _step(model, positives).detached()
    conditioning, reals = sampler.conditions(step), sampler.replaced(step)
    generator = torch.Generator().manual_seed(0)

    parts = {"model": model, "generator": sampler.pathways, "discriminator": sampler.discriminator}
    before = {name: _snapshot(part) for name, part in parts.items()}
    fakes, _ = sampler.generator_step(conditioning, generator)
    assert not _unchanged(sampler.pathways, before["generator"])
    assert _unchanged(sampler.discriminator, before["discriminator"])
    assert _unchanged(model, before["model"])
    assert all(not fake.requires_grad for fake in fakes.values())

    before = {name: _snapshot(part) for name, part in parts.items()}
    sampler.discriminator_step(reals, fakes)
    assert not _unchanged(sampler.discriminator, before["discriminator"])
    assert _unchanged(sampler.pathways, before["generator"])
    assert _unchanged(model, before["model"])


def test_base_step_leaves_generator_and_discriminator_alone(umls, monkeypatch):
    config, model, sampler = _build(umls)
    trainer = Trainer(model, umls, config, sampler, sampler, CPU)
    before_update = _snapshot(sampler.pathways)
    model_before = _snapshot(model)
    after_update = {}
    real_update = sampler.update

    def update(*args):
        logs = real_update(*args)
        after_update["generator"] = _snapshot(sampler.pathways)
        after_update["discriminator"] = _snapshot(sampler.discriminator)
        return logs

    monkeypatch.setattr(sampler, "update", update)
    trainer.step(umls.train[:64], sampler)
    assert after_update, "the trainer did not call sampler.update"
    assert not _unchanged(sampler.pathways, before_update)  # update did train G
    assert _unchanged(sampler.pathways, after_update["generator"])
    assert _unchanged(sampler.discriminator, after_update["discriminator"])
    assert not _unchanged(model, model_before)


def test_generated_negatives_carry_no_gradient(umls):
    """Backpropagating through the generated columns reaches neither G nor the embeddings."""
    _, model, sampler = _build(umls)
    positives = umls.train[:64]
    negatives, _, _ = _sample(model, sampler, positives)
    generated = negatives.embeddings[:, negatives.groups["generated"]]
    uniform = negatives.embeddings[:, negatives.groups["uniform"]]
    assert uniform.requires_grad  # real entities do carry the base model's gradient
    generated.sum().backward()
    assert all(p.grad is None for p in sampler.pathways.parameters())
    assert torch.count_nonzero(model.encoder.embeddings.weight.grad) == 0

    _, model, sampler = _build(umls, dans_generated_share=1.0)
    negatives, _, _ = _sample(model, sampler, positives)
    assert not negatives.embeddings.requires_grad


# --------------------------------------------------------------------------------------------
# Snap mode.
# --------------------------------------------------------------------------------------------
def test_snap_mode_gives_nearest_allowed_real_entities(umls, train_set):
    _, model, sampler = _build(umls, dans_mode="snap")
    assert sampler.known_triples is umls.train_known_triples
    positives = umls.train[:200]
    negatives, entities, relations = _sample(model, sampler, positives, seed=4)
    assert negatives.ids.shape == (200, K)
    generated = negatives.groups["generated"]
    ids = negatives.ids[:, generated]
    assert torch.equal(negatives.embeddings[:, generated], entities[ids])
    triples = negatives.triples(positives)[:, generated].reshape(-1, 3).tolist()
    assert not any(tuple(t) in train_set for t in triples)

    # The same generator seed gives the vectors before snapping; snap a handful by brute force.
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        step = StepContext(positives, entities, relations, model.decoder, generator)
        conditioning = sampler.conditions(step)
        sides = sampler.draw_sides(len(positives), generator)
        vectors = torch.cat(list(sampler.generate(conditioning, sides, generator).values()), 1)
    assert torch.equal(torch.cat(list(sides.values()), 1), negatives.head_replaced[:, generated])
    moved = 0
    for b in range(8):
        h, r, t = positives[b].tolist()
        for j in range(vectors.shape[1]):
            head = negatives.head_replaced[b, j].item()
            distances = (entities.detach() - vectors[b, j]).norm(dim=-1)
            allowed = [
                e
                for e in distances.argsort().tolist()
                if ((e, r, t) if head else (h, r, e)) not in train_set
            ]
            assert ids[b, j].item() == allowed[0]
            moved += allowed[0] != distances.argmin().item()
    # Not vacuous: some vectors' nearest entity overall forms a train triple (4 of these 80).
    assert moved > 0


def test_uniform_share_is_the_uniform_samplers_pick_with_its_filter_weights(umls, monkeypatch):
    _, model, sampler = _build(umls, negatives=4, filter_negatives=True)
    sides = torch.tensor([[True, False], [False, False]])
    ids = torch.tensor([[5, 7], [9, 11]])
    kept = torch.tensor([[True, False], [True, True]])
    monkeypatch.setattr(sampler.uniform, "pick", lambda step: (sides, ids, kept))
    negatives, entities, _ = _sample(model, sampler, umls.train[:2])
    assert_close(negatives.embeddings[:, 2:], entities[ids])
    assert torch.equal(negatives.head_replaced[:, 2:], sides)
    # By hand: the kept uniform weights average 1 on their own, (2, 0) and (1, 1); with the
    # generated pair's ones each row sums to 4 over 4 negatives already.
    assert_close(negatives.weights, torch.tensor([[1.0, 1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    # The generated columns are fakes, not entities, and carry no gradient back.
    assert not torch.isin(negatives.embeddings[:, :2], entities).all()
    negatives.embeddings.sum().backward()
    assert all(p.grad is None for p in sampler.pathways.parameters())


def test_snap_weights_average_one_when_a_slot_has_no_allowed_entity():
    """Every tail completes a known triple for (0, r, ?), so tail-replacing fakes of (0, r, 1)
    have nowhere to snap and get weight 0; as everywhere else (Negatives, bce_loss), each
    positive's remaining weights should be rescaled to average 1."""
    known = KnownTriples(torch.tensor([[0, 0, t] for t in range(4)]), 4, 1)
    decoder = DECODERS.get("distmult")(1, 4)
    torch.manual_seed(0)
    sampler = DANSSampler(4, 4, 4, known, options=DANSOptions(mode="snap", generated_share=1.0))
    positives = torch.tensor([[0, 0, 1]] * 3)
    generator = torch.Generator().manual_seed(0)
    step = StepContext(positives, torch.randn(4, 4), decoder.relations(), decoder, generator)
    negatives = sampler.sample(step)
    tail = ~negatives.head_replaced
    assert tail.any() and negatives.weights is not None
    assert (negatives.weights[tail] == 0).all()
    assert_close(negatives.weights.mean(1), torch.ones(3))


# --------------------------------------------------------------------------------------------
# Ablation switches.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pathways", ["entity", "relation", "both"])
@pytest.mark.parametrize("film", [True, False])
def test_ablation_switches(umls, pathways, film):
    _, model, sampler = _build(umls, dans_pathways=pathways, dans_film=film)
    expected = ["entity", "relation"] if pathways == "both" else [pathways]
    assert list(sampler.pathways) == expected
    assert all((p.film is not None) == film for p in sampler.pathways.values())
    step = _step(model, umls.train[:64]).detached()
    conditioning, reals = sampler.conditions(step), sampler.replaced(step)
    fakes, generator_logs = sampler.generator_step(conditioning, torch.Generator().manual_seed(0))
    assert ("film_alpha_deviation" in generator_logs) == film
    assert ("film_beta" in generator_logs) == film
    discriminator_logs = sampler.discriminator_step(reals, fakes)
    assert ("auxiliary_accuracy" in discriminator_logs) == (pathways == "both")


GENERATOR_LOGS = {"generator_loss", "film_alpha_deviation", "film_beta"}
DISCRIMINATOR_LOGS = {
    "discriminator_loss",
    "discriminator_real_accuracy",
    "discriminator_fake_accuracy",
    "auxiliary_accuracy",
}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ({}, GENERATOR_LOGS | DISCRIMINATOR_LOGS),
        # No generator step: the discriminator still trains, on fakes made without gradient.
        ({"dans_generator_steps": 0}, DISCRIMINATOR_LOGS),
        ({"dans_discriminator_steps": 0}, GENERATOR_LOGS),
    ],
)
def test_update_logs(umls, steps, expected):
    _, model, sampler = _build(umls, **steps)
    generator_before = _snapshot(sampler.pathways)
    discriminator_before = _snapshot(sampler.discriminator)
    logs = sampler.update(_step(model, umls.train[:64]).detached())
    assert logs.keys() == expected
    assert all(math.isfinite(value) for value in logs.values())
    for key in expected:
        if key.endswith("accuracy"):
            assert 0.0 <= logs[key] <= 1.0, key
    assert sampler.skipped_steps == {"generator": 0, "discriminator": 0}
    # Each network moved exactly when it had steps to take.
    assert _unchanged(sampler.pathways, generator_before) == ("generator_loss" not in expected)
    assert _unchanged(sampler.discriminator, discriminator_before) == (
        "discriminator_loss" not in expected
    )


def _updated(umls, positives, generator, **overrides):
    """A fresh sampler's generator and discriminator after one update on ``positives``."""
    _, model, sampler = _build(umls, **overrides)
    entities, relations = model()
    sampler.update(StepContext(positives, entities, relations, model.decoder, generator).detached())
    return _snapshot(sampler.pathways) | _snapshot(sampler.discriminator)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_gan_positives_trains_the_gan_on_a_random_sample_of_the_batch(umls):
    positives = umls.train[:64]
    sampled = _updated(umls, positives, torch.Generator().manual_seed(3), dans_gan_positives=16)
    # By hand: the same draw from the same generator, then an update on those 16 alone.
    generator = torch.Generator().manual_seed(3)
    chosen = torch.randperm(64, generator=generator)[:16]
    by_hand = _updated(umls, positives[chosen], generator)
    assert _same(sampled, by_hand)
    everything = _updated(umls, positives, torch.Generator().manual_seed(3))
    assert not _same(sampled, everything)
    # A sample at least as large as the batch is the whole batch, as 0 is.
    whole = _updated(umls, positives, torch.Generator().manual_seed(3), dans_gan_positives=64)
    assert _same(whole, everything)


def test_shared_fakes_are_one_per_conditioning_vector(umls):
    positives = umls.train[:64]
    _, model, shared = _build(umls, dans_fake_per_condition=True)
    negatives, _, _ = _sample(model, shared, positives)
    for name, cols in _columns(shared).items():
        fakes, heads = negatives.embeddings[:, cols], negatives.head_replaced[:, cols]
        # By hand: a negative replacing the head is conditioned on the tail, and the reverse;
        # G_E on that anchor alone, G_R on the anchor, the relation and the side.
        by_key: dict[tuple[int, ...], set[tuple[float, ...]]] = {}
        for b, (h, r, t) in enumerate(positives.tolist()):
            for k, head in enumerate(heads[b].tolist()):
                anchor = t if head else h
                key = (anchor,) if name == "entity" else (anchor, r, head)
                by_key.setdefault(key, set()).add(tuple(fakes[b, k].tolist()))
        assert all(len(drawn) == 1 for drawn in by_key.values()), name
        assert len({fake for drawn in by_key.values() for fake in drawn}) == len(by_key), name
        assert len(by_key) < heads.numel(), "the check above needs shared keys"
    # Asked directly, as the hardest-negatives query does, it draws every fake on its own.
    entities, relations = model()
    step = StepContext(positives, entities, relations, model.decoder, torch.Generator())
    conditioning = shared.conditions(step)
    tails = {name: torch.zeros(64, 3, dtype=torch.bool) for name in shared.pathways}
    for fakes in shared.generate(conditioning, tails, torch.Generator()).values():
        assert not torch.equal(fakes[:, 0], fakes[:, 1])
    # Without input noise, and with batch statistics fixed, a fake depends on its row alone:
    # sharing it changes nothing.
    _, model, each = _build(umls, dans_noise_sigma=0.0)
    _, _, shared = _build(umls, dans_noise_sigma=0.0, dans_fake_per_condition=True)
    each.eval(), shared.eval()
    first, _, _ = _sample(model, each, positives)
    second, _, _ = _sample(model, shared, positives)
    # The generated columns; the uniform ones follow a random stream the noise draws moved.
    generated = first.groups["generated"]
    assert torch.equal(first.head_replaced[:, generated], second.head_replaced[:, generated])
    assert_close(first.embeddings[:, generated], second.embeddings[:, generated])


# --------------------------------------------------------------------------------------------
# Beyond the paper: the generator learns from the base model's scores.
# --------------------------------------------------------------------------------------------
def test_the_score_term_adds_its_weight_times_minus_log_sigmoid(umls):
    positives = umls.train[:64]
    losses = []
    for scorer in (None, lambda fake: torch.full((len(fake),), 0.5)):
        _, model, sampler = _build(umls, dans_score_weight=3.0)
        step = _step(model, positives).detached()
        _, logs = sampler.generator_step(
            sampler.conditions(step), torch.Generator().manual_seed(0), scorer
        )
        losses.append(logs["generator_loss"])
    # By hand: 3 * -log sigmoid(0.5) = 3 * log(1 + e^-0.5).
    assert losses[1] - losses[0] == pytest.approx(3 * math.log1p(math.exp(-0.5)), rel=1e-5)


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    # (generator steps, discriminator steps, Adam's beta1): the paper's, and the authors' code's.
    [("dans", (5, 1, 0.9)), ("dans-authors", (1, 10, 0.5))],
)
def test_dans_trains_the_papers_schedule_and_dans_authors_the_authors_codes(
    umls, sampler, schedule
):
    _, model, built = _build(umls, sampler=sampler)
    steps = {"generator": 0, "discriminator": 0}
    for name in steps:
        optimizer = getattr(built, f"{name}_optimizer")
        take_step = optimizer.step

        def counted(*args, name=name, take_step=take_step, **kwargs):
            steps[name] += 1
            return take_step(*args, **kwargs)

        optimizer.step = counted
    built.update(_step(model, umls.train[:64]).detached())
    beta1 = built.generator_optimizer.param_groups[0]["betas"][0]
    assert (steps["generator"], steps["discriminator"], beta1) == schedule


def test_gan_beta1_is_the_first_moment_decay_of_both_gan_optimisers(umls):
    for beta1 in (0.9, 0.5):
        _, _, sampler = _build(umls, dans_gan_beta1=beta1)
        for optimizer in (sampler.generator_optimizer, sampler.discriminator_optimizer):
            assert optimizer.param_groups[0]["betas"] == (beta1, 0.999)


def test_adversarial_alpha_weighs_each_negative_by_its_softmax_score(umls):
    positives = umls.train[:32]
    _, model, plain = _build(umls)
    assert _sample(model, plain, positives)[0].weights is None
    _, model, weighted = _build(umls, dans_adversarial_alpha=50.0)
    negatives, entities, relations = _sample(model, weighted, positives)
    # By hand, negative by negative: the decoder's logit of the corrupted triple.
    decoder = model.decoder
    scores = torch.empty(negatives.head_replaced.shape)
    for b, (h, r, t) in enumerate(positives.tolist()):
        for k, head in enumerate(negatives.head_replaced[b].tolist()):
            anchor, rel = (
                (entities[t], decoder.inverse(relations[r][None])[0])
                if head
                else (
                    entities[h],
                    relations[r],
                )
            )
            scores[b, k] = decoder.score(anchor, rel, negatives.embeddings[b, k])
    expected = torch.softmax(50.0 * scores, dim=1) * scores.shape[1]
    assert_close(negatives.weights, expected, rtol=1e-4, atol=1e-5)
    assert expected.std() > 0.1  # far from equal weights, so the check means something


def test_the_queries_are_the_rows_kept_entity_and_relation(umls):
    _, model, sampler = _build(umls)
    positives = umls.train[:3]
    step = _step(model, positives).detached()
    anchors, relations = sampler.queries(step)
    decoder = model.decoder
    for b, (h, r, t) in enumerate(positives.tolist()):
        assert_close(anchors[2 * b], step.entities[h])
        assert_close(anchors[2 * b + 1], step.entities[t])
        assert_close(relations[2 * b], step.relations[r])
        assert_close(relations[2 * b + 1], decoder.inverse(step.relations[r][None])[0])


def test_with_the_score_term_the_fakes_score_above_the_uniform_negatives(tmp_path):
    """A short UMLS run's last epoch: the term raises the fakes' mean logit further above the
    uniform draws' than the paper's objective leaves it (gaps of 1.54 and 0.56 when written)."""

    def gap(weight):
        out = tmp_path / str(weight)
        config = dans.TrainConfig(
            sampler="dans", dans_score_weight=weight, dim=16, epochs=20, eval_every=20, device="cpu"
        )
        dans.train(config, out=out)
        last = list(csv.DictReader((out / "log.csv").open()))[-1]
        return float(last["score_generated"]) - float(last["score_uniform"])

    without, with_term = gap(0.0), gap(1.0)
    assert with_term > 0 and with_term > without + 0.5, (without, with_term)


# --------------------------------------------------------------------------------------------
# Every decoder and encoder trains with it.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["lookup", "rgcn"])
@pytest.mark.parametrize("decoder", ["distmult", "complex", "rotate", "transe"])
def test_one_training_step_with_every_model(umls, encoder, decoder):
    config, model, sampler = _build(umls, encoder=encoder, decoder=decoder)
    assert type(sampler) is DANSSampler
    trainer = Trainer(model, umls, config, sampler, sampler, CPU)
    logs = trainer.step(umls.train[:64], sampler)
    assert math.isfinite(logs["loss"])
    assert all(f"score_{group}" in logs for group in ("entity_pathway", "relation_pathway"))
    assert trainer.skipped_steps == 0


# --------------------------------------------------------------------------------------------
# The generator's output range.
# --------------------------------------------------------------------------------------------
def test_output_range(umls):
    _, model, sampler = _build(umls, dans_output_range="entities")
    with torch.no_grad():
        model.encoder.embeddings.weight.mul_(20)
    positives = umls.train[:200]
    stretched, entities, _ = _sample(model, sampler, positives)
    largest = entities.abs().max()
    assert largest > 1
    generated = stretched.embeddings[:, stretched.groups["generated"]]
    assert generated.abs().max() <= largest
    assert generated.abs().max() > 1
    # "unit" is the same tanh output, unscaled.
    sampler.output_range = "unit"
    unit, _, _ = _sample(model, sampler, positives)
    unit_generated = unit.embeddings[:, unit.groups["generated"]]
    assert unit_generated.abs().max() <= 1
    assert_close(generated, largest.detach() * unit_generated)


# --------------------------------------------------------------------------------------------
# Refused settings.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("generated_share", 0.0),
        ("generated_share", 1.5),
        ("pathways", "neither"),
        ("mode", "nearest"),
        ("output_range", "huge"),
        ("generator_layers", 0),
        ("gan_positives", -1),
    ],
)
def test_invalid_settings_are_refused(umls, key, value):
    flag = "--dans-" + key.replace("_", "-")
    with pytest.raises(ConfigError, match=flag):
        DANSSampler(
            umls.num_entities,
            K,
            DIM,
            umls.train_known_triples,
            options=DANSOptions(**{key: value}),
        )
    with pytest.raises(ConfigError, match=flag):
        _config(**{f"dans_{key}": value})


def test_snap_needs_known_triples():
    with pytest.raises(ConfigError, match="known-true"):
        DANSSampler(10, K, DIM, options=DANSOptions(mode="snap"))


# --------------------------------------------------------------------------------------------
# Determinism.
# --------------------------------------------------------------------------------------------
def test_same_seed_same_negatives(umls):
    positives = umls.train[:100]
    (_, model_a, sampler_a), (_, model_b, sampler_b) = _build(umls), _build(umls)
    a, _, _ = _sample(model_a, sampler_a, positives, seed=5)
    b, _, _ = _sample(model_b, sampler_b, positives, seed=5)
    c, _, _ = _sample(model_a, sampler_a, positives, seed=6)
    assert torch.equal(a.embeddings, b.embeddings)
    assert torch.equal(a.head_replaced, b.head_replaced)
    generated = a.groups["generated"]
    assert not torch.equal(a.embeddings[:, generated], c.embeddings[:, generated])
    assert not torch.equal(a.head_replaced, c.head_replaced)


def test_as_the_authors_code_runs_g_e_trains_but_only_g_rs_fakes_are_negatives(umls):
    _, model, sampler = _build(umls, dans_negative_pathways="relation")
    assert set(sampler.pathways) == {"entity", "relation"}
    positives = umls.train[:256]
    before = _snapshot(sampler.pathways["entity"])
    sampler.update(_step(model, positives).detached())
    assert not _unchanged(sampler.pathways["entity"], before), "G_E trains against D"
    negatives = _sample(model, sampler, positives, seed=5)[0].embeddings
    with torch.no_grad():
        for parameter in sampler.pathways["entity"].parameters():
            parameter.add_(1.0)
    assert torch.equal(_sample(model, sampler, positives, seed=5)[0].embeddings, negatives)
    with torch.no_grad():
        for parameter in sampler.pathways["relation"].parameters():
            parameter.add_(1.0)
    changed = _sample(model, sampler, positives, seed=5)[0].embeddings
    assert not torch.equal(changed[:, :10], negatives[:, :10])


def test_negatives_from_a_pathway_that_is_not_trained_are_refused(umls):
    with pytest.raises(ConfigError, match="--dans-negative-pathways relation needs that pathway"):
        _build(umls, dans_pathways="entity", dans_negative_pathways="relation")


def test_a_row_sparse_entity_table_gives_the_same_negatives_and_a_row_sparse_gradient(umls):
    from dans.pipeline import build_trainer

    settings = dict(sampler="dans", encoder="lookup", dim=8, l2_scope="batch", device="cpu")
    losses, grads = [], []
    for sparse in (False, True):
        config = dans.TrainConfig(**settings, sparse_embeddings=sparse)
        trainer = build_trainer(config, umls, torch.device("cpu"))
        trainer.optimizer.step = lambda: None  # keep the gradient to look at it
        losses.append(trainer.step(umls.train[:300], trainer.sampler)["loss"])
        grads.append(trainer.model.encoder.embeddings.weight.grad)
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert grads[1].is_sparse
    torch.testing.assert_close(grads[1].to_dense(), grads[0])
