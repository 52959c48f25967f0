"""The 1-vs-all reference: its blocked cross-entropy over the step's distinct queries
(gradients computed with the scores for a bilinear decoder, scores recomputed for the others)
equals the one over the whole score matrix of every positive's own queries, in value and
gradients, whatever the block."""

import pytest
import torch
import torch.nn.functional as F

from dans.models import DECODERS
from dans.samplers import AllEntitiesOptions, AllEntitiesSampler, StepContext
from dans.samplers.all_entities import _DistinctQueries

E, R, D = 7, 3, 4
DISTINCT = [[0, 0, 1], [2, 1, 3], [4, 2, 0], [6, 0, 5], [5, 1, 6]]
# (0, 0, ?) asked three times, (1, 2^-1, ?) twice; (2, 1, ?) and (2, 1^-1, ?) are one vector
# under DistMult but two queries.
SHARED = [[0, 0, 1], [0, 0, 2], [0, 0, 3], [4, 2, 1], [5, 2, 1], [2, 1, 3], [3, 1, 2]]


def _step(decoder_name, seed=0, positives=DISTINCT):
    torch.manual_seed(seed)
    decoder = DECODERS.get(decoder_name)(R, D)
    torch.nn.init.normal_(decoder.relation_embeddings)
    entities = torch.randn(E, D, requires_grad=True)
    positives = torch.tensor(positives)
    return StepContext(positives, entities, decoder.relations(), decoder, torch.Generator())


def _by_hand(step):
    """Every query's scores against every entity at once, then the mean cross-entropy."""
    h, r, t = step.positives.T
    decoder = step.decoder
    rels = step.relations[r]
    tails = decoder.score_all_tails(step.entities[h], rels, step.entities)
    heads = decoder.score_all_tails(step.entities[t], decoder.inverse(rels), step.entities)
    return F.cross_entropy(torch.cat([tails, heads]), torch.cat([t, h]))


@pytest.mark.parametrize("decoder", ["distmult", "complex", "rotate", "transe"])
# Float32 scores of E = 7 entities: 1 or 2 distinct queries per block, or all in one.
@pytest.mark.parametrize("memory_mb", [4 * E / 2**20, 8 * E / 2**20, 1.0])
@pytest.mark.parametrize("positives", [DISTINCT, SHARED], ids=["distinct", "shared"])
def test_the_blocked_loss_is_the_whole_matrixs_cross_entropy(decoder, memory_mb, positives):
    sampler = AllEntitiesSampler(E, 1, options=AllEntitiesOptions(memory_mb=memory_mb))
    step = _step(decoder, positives=positives)
    loss = sampler.loss(step)
    grads = torch.autograd.grad(loss, [step.entities, step.decoder.relation_embeddings])
    fresh = _step(decoder, positives=positives)
    expected = _by_hand(fresh)
    expected_grads = torch.autograd.grad(
        expected, [fresh.entities, fresh.decoder.relation_embeddings]
    )
    torch.testing.assert_close(loss, expected)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def test_a_query_several_positives_ask_is_one_row_that_owns_all_their_answers():
    queries = _DistinctQueries.of(_step("distmult", positives=SHARED))
    rows = list(
        zip(
            queries.head_side.tolist(),
            queries.relation_ids.tolist(),
            queries.anchor_ids.tolist(),
            queries.counts.long().tolist(),
            strict=True,
        )
    )
    # Tail queries (h, r, ?), then head queries (t, r^-1, ?), each ordered by relation, anchor.
    assert rows == [
        (False, 0, 0, 3),
        (False, 1, 2, 1),
        (False, 1, 3, 1),
        (False, 2, 4, 1),
        (False, 2, 5, 1),
        (True, 0, 1, 1),
        (True, 0, 2, 1),
        (True, 0, 3, 1),
        (True, 1, 2, 1),
        (True, 1, 3, 1),
        (True, 2, 1, 2),
    ]
    owned = list(zip(queries.owners.tolist(), queries.answers.tolist(), strict=True))
    assert owned == [
        (0, 1), (0, 2), (0, 3), (1, 3), (2, 2), (3, 1), (4, 1),
        (5, 0), (6, 0), (7, 0), (8, 3), (9, 2), (10, 4), (10, 5),
    ]  # fmt: skip
    # Two distinct queries per block: a block's answers are the run its rows own.
    assert queries.blocks(2)[0] == (slice(0, 2), slice(0, 4))
    assert queries.blocks(2)[-1] == (slice(10, 12), slice(12, 14))


def test_the_bilinear_loss_scales_its_kept_gradients_by_the_upstream_one():
    sampler = AllEntitiesSampler(E, 1, options=AllEntitiesOptions(memory_mb=8 / 2**20))
    step = _step("complex")
    (once,) = torch.autograd.grad(sampler.loss(step), step.entities)
    (thrice,) = torch.autograd.grad(3 * sampler.loss(step), step.entities)
    torch.testing.assert_close(thrice, 3 * once)


def test_it_draws_no_negatives_and_lays_out_every_entity_for_analyses():
    sampler = AllEntitiesSampler(E, 1)
    assert not sampler.draws_negatives
    negatives = sampler.sample(_step("distmult"))
    assert negatives.ids.tolist() == [list(range(E))] * 5
    assert not negatives.head_replaced.any()
