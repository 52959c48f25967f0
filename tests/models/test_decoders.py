"""Decoders: the triple, broadcast and all-entity paths agree; inverse relations; odd dims."""

import pytest
import torch

from dans.errors import ConfigError
from dans.models import DECODERS, Decoder, decoders
from dans.models.decoders import DistanceOptions

NAMES = ["distmult", "complex", "rotate", "transe"]
E, R, DIM, B, K = 15, 4, 6, 5, 7


def _setup(name, seed=0):
    torch.manual_seed(seed)
    decoder = DECODERS.get(name)(R, DIM)
    entities = torch.randn(E, DIM)
    relations = decoder.relations().detach()
    heads = torch.randint(E, (B,))
    rels = torch.randint(R, (B,))
    tails = torch.randint(E, (B,))
    return decoder, entities, relations, heads, rels, tails


def test_the_four_decoders_are_registered():
    assert set(NAMES) <= set(DECODERS.names())
    for name in NAMES:
        assert issubclass(DECODERS.get(name), Decoder)
        assert DECODERS.get(name).name == name


@pytest.mark.parametrize("name", NAMES)
def test_relation_shapes(name):
    decoder, _, relations, *_ = _setup(name)
    expected = DIM // 2 if name == "rotate" else DIM
    assert relations.shape == (R, expected)
    assert decoder.inverse(relations).shape == relations.shape


@pytest.mark.parametrize("name", NAMES)
def test_broadcast_negatives_match_single_triples(name):
    decoder, entities, relations, heads, rels, _ = _setup(name)
    candidates = torch.randint(E, (B, K))
    broadcast = decoder.score(
        entities[heads][:, None], relations[rels][:, None], entities[candidates]
    )
    assert broadcast.shape == (B, K)
    one_by_one = torch.stack(
        [
            torch.stack(
                [
                    decoder.score(
                        entities[heads[b]], relations[rels[b]], entities[candidates[b, k]]
                    )
                    for k in range(K)
                ]
            )
            for b in range(B)
        ]
    )
    assert torch.allclose(broadcast, one_by_one, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_corrupted_scores_match_single_triples(name):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    candidates = torch.randint(E, (B, K))
    head_replaced = torch.rand(B, K) < 0.5
    scores = decoder.score_corrupted(
        entities[heads], relations[rels], entities[tails], head_replaced, entities[candidates]
    )
    assert scores.shape == (B, K)
    for b in range(B):
        for k in range(K):
            h, t = heads[b], tails[b]
            if head_replaced[b, k]:
                h = candidates[b, k]
            else:
                t = candidates[b, k]
            single = decoder.score(entities[h], relations[rels[b]], entities[t])
            assert torch.allclose(scores[b, k], single, atol=1e-5), (b, k)


@pytest.mark.parametrize("name", NAMES)
def test_corrupted_scores_and_gradients_match_the_generic_path(name):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    head_replaced = torch.rand(B, K) < 0.5
    inputs = [
        entities[heads].requires_grad_(),
        relations[rels].requires_grad_(),
        entities[tails].requires_grad_(),
    ]
    candidates = entities[torch.randint(E, (B, K))].requires_grad_()
    upstream = torch.randn(B, K)
    results = []
    for path in (decoder.score_corrupted, lambda *a: Decoder.score_corrupted(decoder, *a)):
        scores = path(*inputs[:3], head_replaced, candidates)
        grads = torch.autograd.grad(scores, [*inputs, candidates], upstream)
        results.append((scores, grads))
    (fast, fast_grads), (generic, generic_grads) = results
    torch.testing.assert_close(fast, generic)
    for a, b in zip(fast_grads, generic_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_rotate_corrupted_distances_have_the_gradient_of_their_formula():
    # Central differences in float64 against the written-out backward, on both sides.
    torch.manual_seed(0)
    queries = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    candidates = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    head_replaced = torch.rand(3, 5) < 0.5
    assert head_replaced.any() and not head_replaced.all()
    apply = DECODERS.get("rotate")(1, 4).corrupted_distances
    assert torch.autograd.gradcheck(apply, (queries, candidates, head_replaced))
    # A candidate on its query has distance 0 there, and a finite gradient.
    on_query = queries.detach()[:, :1].expand(-1, 5, -1).clone().requires_grad_()
    distances = apply(queries, on_query, torch.zeros(3, 5, dtype=torch.bool))
    assert torch.allclose(distances, torch.zeros_like(distances), atol=1e-5)
    distances.sum().backward()
    assert torch.isfinite(on_query.grad).all() and torch.isfinite(queries.grad).all()


def test_rotate_corrupted_scores_broadcast_one_candidate_row_over_the_batch():
    decoder, entities, relations, heads, rels, tails = _setup("rotate")
    head_replaced = torch.rand(B, K) < 0.5
    inputs = (entities[heads], relations[rels], entities[tails], head_replaced)
    one = entities[:K][None].requires_grad_()
    each = one.detach().expand(B, -1, -1).clone().requires_grad_()
    torch.testing.assert_close(
        decoder.score_corrupted(*inputs, one), decoder.score_corrupted(*inputs, each)
    )
    decoder.score_corrupted(*inputs, one).sum().backward()
    decoder.score_corrupted(*inputs, each).sum().backward()
    torch.testing.assert_close(one.grad, each.grad.sum(0, keepdim=True))


@pytest.mark.parametrize("name", ["distmult", "complex"])
@pytest.mark.parametrize("shared_by", [1, 2, 5])
def test_shared_draws_score_and_differentiate_as_each_positive_with_its_own_copy(name, shared_by):
    # B = 5 positives: with 2 per draw the last group holds one positive.
    decoder, entities, relations, heads, rels, tails = _setup(name)
    groups = -(-B // shared_by)
    drawn = entities[torch.randint(E, (groups, K))].requires_grad_()
    head_replaced = torch.rand(B, K) < 0.5
    inputs = [entities[heads], relations[rels], entities[tails]]
    inputs = [t.clone().requires_grad_() for t in inputs]
    upstream = torch.randn(B, K)
    shared = decoder.score_corrupted_shared(*inputs, head_replaced, drawn, shared_by)
    own = drawn.repeat_interleave(shared_by, 0)[:B]
    copied = decoder.score_corrupted(*inputs, head_replaced, own)
    torch.testing.assert_close(shared, copied)
    for a, b in zip(
        torch.autograd.grad(shared, [*inputs, drawn], upstream),
        torch.autograd.grad(copied, [*inputs, drawn], upstream),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_a_tails_scorer_scores_every_set_of_tails_as_score_does(name):
    decoder, entities, relations, heads, rels, _ = _setup(name)
    scorer = decoder.tails_scorer(entities[heads], relations[rels])
    for _ in range(3):
        tails = entities[torch.randint(E, (B,))]
        expected = decoder.score(entities[heads], relations[rels], tails)
        assert torch.equal(scorer(tails), expected)


def test_a_decoder_with_score_alone_gets_a_tails_scorer_that_calls_it():
    class Offset(Decoder):
        def score(self, heads, relations, tails):
            return (heads - tails).sum(-1) + relations.sum(-1)

    heads, relations, tails = torch.ones(2, 3), torch.full((2, 3), 2.0), torch.zeros(2, 3)
    scorer = Offset(R, 3).tails_scorer(heads, relations)
    assert scorer(tails).tolist() == [9.0, 9.0]  # 3 * 1 + 3 * 2


@pytest.mark.parametrize("name", NAMES)
def test_triple_scores_are_one_per_triple(name):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    batch = decoder.score(entities[heads], relations[rels], entities[tails])
    assert batch.shape == (B,)
    for b in range(B):
        single = decoder.score(entities[heads[b]], relations[rels[b]], entities[tails[b]])
        assert single.shape == ()
        assert torch.allclose(batch[b], single, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("side", ["tail", "head"])
def test_score_all_entities_matches_score(name, side):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    if side == "tail":
        scores = decoder.score_all_tails(entities[heads], relations[rels], entities)
    else:
        scores = decoder.score_all_heads(relations[rels], entities[tails], entities)
    assert scores.shape == (B, E)
    for b in range(B):
        for e in range(E):
            h, t = (heads[b], e) if side == "tail" else (e, tails[b])
            expected = decoder.score(entities[h], relations[rels[b]], entities[t])
            assert torch.allclose(scores[b, e], expected, atol=1e-5), (b, e)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_relation_swaps_head_and_tail(name):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    forward = decoder.score(entities[heads], relations[rels], entities[tails])
    backward = decoder.score(entities[tails], decoder.inverse(relations[rels]), entities[heads])
    assert torch.allclose(forward, backward, atol=1e-5)
    # The inverse of the inverse is the relation itself.
    assert torch.allclose(decoder.inverse(decoder.inverse(relations)), relations)


@pytest.mark.parametrize("name", NAMES)
def test_query_relations_ask_each_side_as_a_tail_query(name):
    decoder, entities, relations, heads, rels, tails = _setup(name)
    head_side = torch.tensor([True, False, True, True, False])
    anchors = torch.where(head_side[:, None], entities[tails], entities[heads])
    queries = decoder.query_relations(relations[rels], head_side)
    candidates = torch.randint(E, (B,))
    found = decoder.score(anchors, queries, entities[candidates])
    for b in range(B):  # each query by hand: (candidate, r, t) for a head, (h, r, candidate)
        h, t = (candidates[b], tails[b]) if head_side[b] else (heads[b], candidates[b])
        expected = decoder.score(entities[h], relations[rels[b]], entities[t])
        assert torch.allclose(found[b], expected, atol=1e-5)
    # Both ways at once: the tail queries' relations, then the head queries'.
    sides = torch.arange(2).repeat_interleave(B)
    both = decoder.query_relations(relations[rels].repeat(2, 1), sides)
    assert torch.equal(decoder.both_query_relations(relations[rels]), both)


@pytest.mark.parametrize("name", ["distmult", "complex", "transe"])
def test_inverse_is_not_the_identity_where_the_decoder_is_asymmetric(name):
    # DistMult is symmetric by construction; the others must actually change the relation.
    decoder, _, relations, *_ = _setup(name)
    same = torch.allclose(decoder.inverse(relations), relations)
    assert same == (name == "distmult")


@pytest.mark.parametrize("name", NAMES)
def test_generic_chunked_all_tails_equals_fast_formula(name, monkeypatch):
    decoder, entities, relations, heads, rels, _ = _setup(name)
    fast = decoder.score_all_tails(entities[heads], relations[rels], entities)
    generic = Decoder.score_all_tails(decoder, entities[heads], relations[rels], entities)
    assert torch.allclose(fast, generic, atol=1e-5)
    # Tiny blocks: 2 queries by 4 entities, the last ones short either way; every score is
    # the one a single broadcast over all queries and entities gives, to the bit.
    monkeypatch.setattr(decoders, "_CPU_BLOCK_ENTITIES", 4)
    monkeypatch.setattr(decoders, "_CPU_BROADCAST_BUDGET", 2 * 4 * DIM)
    chunked = Decoder.score_all_tails(decoder, entities[heads], relations[rels], entities)
    whole = decoder.score(entities[heads][:, None], relations[rels][:, None], entities[None])
    assert E % 4 and len(heads) % 2 and torch.equal(chunked, whole)
    assert torch.allclose(fast, chunked, atol=1e-5)
    empty = Decoder.score_all_tails(decoder, entities[:0], relations[:0], entities)
    assert empty.shape == (0, E)
    none = Decoder.score_all_tails(decoder, entities[heads], relations[rels], entities[:0])
    assert none.shape == (len(heads), 0)
    # Elsewhere than on a CPU, one block spans every entity.
    meta = [tensor.to("meta") for tensor in (entities[heads], relations[rels], entities)]
    assert Decoder.score_all_tails(decoder, *meta).shape == (len(heads), E)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_through_every_path(name):
    decoder, entities, _, heads, rels, tails = _setup(name)
    entities.requires_grad_(True)
    scores = decoder.score(entities[heads], decoder.relations()[rels], entities[tails])
    all_tails = decoder.score_all_tails(entities[heads], decoder.relations()[rels], entities)
    (scores.sum() + all_tails.sum()).backward()
    assert torch.isfinite(entities.grad).all() and entities.grad.abs().sum() > 0
    assert decoder.relation_embeddings.grad.abs().sum() > 0


def test_distmult_by_hand():
    decoder = DECODERS.get("distmult")(1, 3)
    h, r, t = (
        torch.tensor([1.0, 2.0, 3.0]),
        torch.tensor([0.5, -1.0, 2.0]),
        torch.tensor([4, 5, 6.0]),
    )
    assert decoder.score(h, r, t).item() == pytest.approx(1 * 0.5 * 4 - 2 * 5 + 3 * 2 * 6)


def test_complex_by_hand():
    # Re(h * r * conj(t)) with h = 1 + 2i, r = 3 - i, t = 2 + 5i: h * r = 5 + 5i, times
    # conj(t) = 2 - 5i gives 10 - 25i + 10i + 25 = 35 - 15i.
    decoder = DECODERS.get("complex")(1, 2)
    h, r, t = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), torch.tensor([2.0, 5.0])
    assert decoder.score(h, r, t).item() == pytest.approx(35.0)


def test_rotate_by_hand():
    # h = 1 + 0i rotated by pi/2 is i; t = 0 + 0i: distance 1, so margin - 1.
    decoder = DECODERS.get("rotate")(1, 2, DistanceOptions(margin=6.0))
    h, r, t = torch.tensor([1.0, 0.0]), torch.tensor([torch.pi / 2]), torch.tensor([0.0, 0.0])
    assert decoder.score(h, r, t).item() == pytest.approx(5.0, abs=1e-5)
    # Rotating onto the tail exactly: distance 0.
    t = torch.tensor([0.0, 1.0])
    assert decoder.score(h, r, t).item() == pytest.approx(6.0, abs=1e-5)


def test_transe_by_hand():
    decoder = DECODERS.get("transe")(1, 2, DistanceOptions(margin=6.0))
    h, r, t = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.0, -3.0])
    # h + r - t = (3, 4): distance 5.
    assert decoder.score(h, r, t).item() == pytest.approx(1.0)
    entities = torch.stack([t, h + r])
    all_tails = decoder.score_all_tails(h[None], r[None], entities)
    assert all_tails[0].tolist() == pytest.approx([1.0, 6.0], abs=1e-3)


@pytest.mark.parametrize("name", ["complex", "rotate"])
def test_complex_valued_decoders_refuse_an_odd_dim(name):
    with pytest.raises(ConfigError, match="even"):
        DECODERS.get(name)(R, 5)


@pytest.mark.parametrize("name", ["distmult", "transe"])
def test_real_valued_decoders_accept_an_odd_dim(name):
    decoder = DECODERS.get(name)(R, 5)
    scores = decoder.score(torch.randn(3, 5), decoder.relations()[:3], torch.randn(3, 5))
    assert scores.shape == (3,)


def test_rotate_has_no_penalty_and_others_do():
    torch.manual_seed(0)
    for name in NAMES:
        decoder = DECODERS.get(name)(R, DIM)
        penalty = decoder.penalty(decoder.relations())
        if name == "rotate":
            assert penalty.item() == 0.0
        else:
            assert penalty.item() == pytest.approx(decoder.relations().pow(2).mean().item())


# ------------------------------------------------------------ compose: e_h * e_r in entity space


def test_compose_by_hand():
    h = torch.tensor([1.0, 2.0, 3.0, 4.0])
    r = torch.tensor([0.5, -1.0, 2.0, 0.0])
    distmult = DECODERS.get("distmult")(1, 4)
    torch.testing.assert_close(distmult.compose(h, r), torch.tensor([0.5, -2.0, 6.0, 0.0]))
    transe = DECODERS.get("transe")(1, 4)
    torch.testing.assert_close(transe.compose(h, r), torch.tensor([1.5, 1.0, 5.0, 4.0]))
    # ComplEx: h = (1 + 3i, 2 + 4i), r = (0.5 + 2i, -1 + 0i) -> (-5.5 + 3.5i, -2 - 4i).
    complex_ = DECODERS.get("complex")(1, 4)
    torch.testing.assert_close(complex_.compose(h, r), torch.tensor([-5.5, -2.0, 3.5, -4.0]))
    # RotatE: phases (pi / 2, pi): h = (1 + 3i) * i = -3 + i, (2 + 4i) * -1 = -2 - 4i.
    rotate = DECODERS.get("rotate")(1, 4)
    phases = torch.tensor([torch.pi / 2, torch.pi])
    torch.testing.assert_close(rotate.compose(h, phases), torch.tensor([-3.0, -2.0, 1.0, -4.0]))


@pytest.mark.parametrize("name", NAMES)
def test_score_follows_from_compose(name):
    """Each decoder's score is a function of ``compose(h, r)`` and ``t``: so DANS's relation
    pathway is centred on the vector the decoder compares tails with."""
    decoder, entities, relations, heads, rels, tails = _setup(name)
    h, r, t = entities[heads], relations[rels], entities[tails]
    query = decoder.compose(h, r)
    if name in ("distmult", "complex"):
        expected = (query * t).sum(-1)
    elif name == "transe":
        expected = decoder.margin - (query - t).norm(dim=-1)
    else:
        re, im = (query - t).chunk(2, -1)
        expected = decoder.margin - (re**2 + im**2).sqrt().sum(-1)
    torch.testing.assert_close(decoder.score(h, r, t), expected, atol=1e-5, rtol=1e-5)
