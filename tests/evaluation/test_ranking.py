"""Filtered, tie-aware ranking: a hand-worked graph, a brute-force cross-check, NaN scores."""

import math

import pytest
import torch

import dans
from dans.builders import build_model
from dans.data.graph import KnowledgeGraph, KnownTriples
from dans.evaluation import Evaluation, RankMetrics, evaluate_by_relation, rank_triples, ranking
from dans.evaluation.metrics import METRIC_NAMES, evaluate
from dans.evaluation.ranking import rank_against_sample
from dans.models import DECODERS, Decoder, DistMult, KGModel, LookupEncoder

# ---------------------------------------------------------------------------------------------
# (a) A hand-made graph with a decoder whose every score is read from a table.
#
# 7 entities (0..6), 2 relations (0, 1).
#   train: (0,0,1) (0,0,2) (2,0,4) (4,1,5) (3,1,6)
#   valid: (0,0,3) (1,1,3)
#   test:  (0,0,4) (1,1,5)
# ---------------------------------------------------------------------------------------------
NUM_ENTITIES = 7
TRAIN = [(0, 0, 1), (0, 0, 2), (2, 0, 4), (4, 1, 5), (3, 1, 6)]
VALID = [(0, 0, 3), (1, 1, 3)]
TEST = [(0, 0, 4), (1, 1, 5)]


def _score_table():
    """TABLE[r, h, t] is the score of (h, r, t); cells no query looks at stay 0."""
    table = torch.zeros(2, NUM_ENTITIES, NUM_ENTITIES, dtype=torch.float64)
    # Test triple (0, 0, 4), target score 3.0.
    # Tail query (0, 0, ?): known tails {1, 2, 3, 4}, so 1, 2, 3 are filtered.
    #   t=0: 2.0 (not known; lower)          t=1: 5.0 (train; better but filtered)
    #   t=2: 3.0 (train; a filtered tie)     t=3: 4.0 (valid; better but filtered)
    #   t=4: 3.0 (target)                    t=5: 3.0 (not known; a tie that counts)
    #   t=6: 0.5 (not known; lower)
    # -> better = 0, equal = 1: optimistic 1, pessimistic 2, realistic 1.5.
    # (t=0 is lower than the target, so the only things above it are filtered.)
    table[0, 0] = torch.tensor([2.0, 5.0, 3.0, 4.0, 3.0, 3.0, 0.5])
    # Head query (?, 0, 4): known heads {0, 2}, so 2 is filtered. Column table[0, :, 4]:
    #   h=0: 3.0 (target, the same cell as above)   h=1: 1.0 (lower)
    #   h=2: 9.0 (train; better but filtered)        h=3: 3.0 (tie)   h=4: 3.0 (tie)
    #   h=5: 4.0 (better)                            h=6: 3.5 (better)
    # -> better = 2, equal = 2: optimistic 3, pessimistic 5, realistic 4.
    table[0, :, 4] = torch.tensor([3.0, 1.0, 9.0, 3.0, 3.0, 4.0, 3.5])
    # Test triple (1, 1, 5), target score 0.0.
    # Tail query (1, 1, ?): known tails {3, 5}, so 3 is filtered. Row table[1, 1]:
    #   t=0,1,2: -1.0 (lower)   t=3: 10.0 (valid; better but filtered)   t=4: -2.0
    #   t=5: 0.0 (target)       t=6: -3.0
    # -> better = 0, equal = 0: rank 1 under every policy.
    table[1, 1] = torch.tensor([-1.0, -1.0, -1.0, 10.0, -2.0, 0.0, -3.0])
    # Head query (?, 1, 5): known heads {1, 4}, so 4 is filtered. Column table[1, :, 5]:
    #   h=0: 0.0 (tie)   h=1: 0.0 (target)   h=2: 0.0 (tie)   h=3: 2.0 (better)
    #   h=4: 0.0 (train; a filtered tie)     h=5: -1.0        h=6: -1.0
    # -> better = 1, equal = 2: optimistic 2, pessimistic 4, realistic 3.
    table[1, :, 5] = torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0, -1.0, -1.0])
    return table


# Hand-worked ranks, in TEST order.
EXPECTED = {
    "tail": {"optimistic": [1.0, 1.0], "pessimistic": [2.0, 1.0], "realistic": [1.5, 1.0]},
    "head": {"optimistic": [3.0, 2.0], "pessimistic": [5.0, 4.0], "realistic": [4.0, 3.0]},
}


class TableDecoder(Decoder):
    """Scores read from a table through one-hot entities; deliberately has no registry name.

    A relation is a one-hot vector of length 2R: its first half selects ``table[r, h, t]``, its
    second half ``table[r, t, h]``, so the inverse relation (halves swapped) satisfies
    ``score(h, r, t) == score(t, inverse(r), h)``. score_all_tails is the generic chunked path.
    """

    def __init__(self, table):
        num_relations = table.shape[0]
        super().__init__(num_relations, table.shape[1], relation_dim=2 * num_relations)
        self.register_buffer("table", table)
        with torch.no_grad():
            self.relation_embeddings.copy_(torch.eye(num_relations, 2 * num_relations))

    def score(self, heads, relations, tails):
        pair = heads[..., None, :, None] * tails[..., None, None, :]
        forward = (pair * self.table).sum((-1, -2))
        backward = (pair * self.table.transpose(-1, -2)).sum((-1, -2))
        num_relations = self.table.shape[0]
        return (relations[..., :num_relations] * forward).sum(-1) + (
            relations[..., num_relations:] * backward
        ).sum(-1)

    def inverse(self, relations):
        num_relations = self.table.shape[0]
        return torch.cat([relations[..., num_relations:], relations[..., :num_relations]], -1)


def _graph(train, valid, test, num_entities, num_relations):
    return KnowledgeGraph(
        entity_names=[f"e{i}" for i in range(num_entities)],
        relation_names=[f"r{i}" for i in range(num_relations)],
        train=torch.tensor(train, dtype=torch.long).reshape(-1, 3),
        valid=torch.tensor(valid, dtype=torch.long).reshape(-1, 3),
        test=torch.tensor(test, dtype=torch.long).reshape(-1, 3),
    )


@pytest.fixture
def hand_graph():
    return _graph(TRAIN, VALID, TEST, NUM_ENTITIES, 2)


@pytest.fixture
def hand_model():
    encoder = LookupEncoder(NUM_ENTITIES, NUM_ENTITIES).double()
    with torch.no_grad():
        encoder.embeddings.weight.copy_(torch.eye(NUM_ENTITIES))
    return KGModel(encoder, TableDecoder(_score_table()).double())


def test_table_decoder_is_not_registered():
    assert all(DECODERS.get(name) is not TableDecoder for name in DECODERS.names())


def test_table_decoder_reads_the_table(hand_model):
    table = _score_table()
    triples = torch.tensor([(0, 0, 4), (2, 0, 4), (1, 1, 3), (0, 1, 5)])
    expected = torch.stack([table[r, h, t] for h, r, t in triples.tolist()])
    assert torch.equal(hand_model.score_hrt(triples), expected)


@pytest.mark.parametrize("side", ["head", "tail"])
@pytest.mark.parametrize("memory_elements", [1, NUM_ENTITIES, 1 << 20])
def test_hand_worked_filtered_tie_aware_ranks(hand_graph, hand_model, side, memory_elements):
    entities, relations = hand_model()
    ranks = rank_triples(
        hand_graph.test,
        entities,
        relations,
        hand_model.decoder,
        hand_graph.known_triples,
        predict_head=side == "head",
        memory_elements=memory_elements,
    )
    for policy, expected in EXPECTED[side].items():
        assert ranks.select(policy).tolist() == expected, policy
    assert ranks.optimistic.tolist() == EXPECTED[side]["optimistic"]
    assert ranks.pessimistic.tolist() == EXPECTED[side]["pessimistic"]
    assert ranks.realistic.tolist() == EXPECTED[side]["realistic"]


def test_unknown_tie_policy_is_refused(hand_graph, hand_model):
    entities, relations = hand_model()
    ranks = rank_triples(
        hand_graph.test, entities, relations, hand_model.decoder, hand_graph.known_triples, False
    )
    with pytest.raises(ValueError, match="tie policy"):
        ranks.select("random")


def test_rank_metrics_hand_computed():
    ranks = torch.tensor([1.0, 2.0, 6.0, 11.0, 2.5])
    metrics = RankMetrics.of(ranks).to_dict()
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 11 + 1 / 2.5) / 5)
    assert metrics["mr"] == pytest.approx((1 + 2 + 6 + 11 + 2.5) / 5)
    assert metrics["hits@1"] == pytest.approx(1 / 5)
    assert metrics["hits@3"] == pytest.approx(3 / 5)
    assert metrics["hits@10"] == pytest.approx(4 / 5)
    # NDCG@5 with one relevant answer: 1 / log2(1 + rank) up to rank 5, then 0.
    ndcg = (1 / math.log2(2) + 1 / math.log2(3) + 0 + 0 + 1 / math.log2(3.5)) / 5
    assert metrics["ndcg@5"] == pytest.approx(ndcg)
    assert set(metrics) == {"mrr", "mr", "hits@1", "hits@3", "hits@10", "ndcg@5"}


def test_rank_metrics_boundary_at_five():
    assert RankMetrics.of(torch.tensor([5.0])).ndcg_at_5 == pytest.approx(1 / math.log2(6))
    assert RankMetrics.of(torch.tensor([5.5])).ndcg_at_5 == 0.0
    assert RankMetrics.of(torch.tensor([10.0])).hits_at_10 == 1.0
    assert RankMetrics.of(torch.tensor([10.5])).hits_at_10 == 0.0


@pytest.mark.parametrize("ties", ["realistic", "optimistic", "pessimistic"])
def test_evaluate_hand_worked_metrics(hand_graph, hand_model, ties):
    result = dans.evaluate(hand_model, hand_graph, split="test", ties=ties).to_dict()
    head = EXPECTED["head"][ties]
    tail = EXPECTED["tail"][ties]

    def expected_metrics(ranks):
        return {
            "mrr": sum(1 / r for r in ranks) / len(ranks),
            "mr": sum(ranks) / len(ranks),
            "hits@1": sum(r <= 1 for r in ranks) / len(ranks),
            "hits@3": sum(r <= 3 for r in ranks) / len(ranks),
            "hits@10": sum(r <= 10 for r in ranks) / len(ranks),
            "ndcg@5": sum(1 / math.log2(1 + r) if r <= 5 else 0.0 for r in ranks) / len(ranks),
        }

    for key, value in expected_metrics(head).items():
        assert result["head"][key] == pytest.approx(value), ("head", key)
    for key, value in expected_metrics(tail).items():
        assert result["tail"][key] == pytest.approx(value), ("tail", key)
    # Overall: the mean over the union of head and tail queries, not a mean of the two means
    # (the same thing here, with equal counts, so check the union values directly).
    for key, value in expected_metrics(head + tail).items():
        assert result[key] == pytest.approx(value), ("overall", key)
    assert result["ties"] == ties
    assert result["queries"] == 4
    assert result["seconds"] >= 0


def test_evaluate_realistic_by_hand(hand_graph, hand_model):
    # Realistic ranks: head [4, 3], tail [1.5, 1].
    result = dans.evaluate(hand_model, hand_graph).to_dict()
    assert result["mrr"] == pytest.approx((1 / 4 + 1 / 3 + 1 / 1.5 + 1) / 4)
    assert result["mr"] == pytest.approx((4 + 3 + 1.5 + 1) / 4)
    assert result["hits@1"] == pytest.approx(1 / 4)
    assert result["hits@3"] == pytest.approx(3 / 4)
    assert result["hits@10"] == pytest.approx(1.0)
    ndcg = (1 / math.log2(5) + 1 / math.log2(4) + 1 / math.log2(2.5) + 1) / 4
    assert result["ndcg@5"] == pytest.approx(ndcg)
    assert result["head"]["mr"] == pytest.approx(3.5)
    assert result["tail"]["mr"] == pytest.approx(1.25)


def test_evaluate_by_relation_by_hand(hand_graph, hand_model):
    # One test triple per relation: r0's realistic ranks are head 4 and tail 1.5, r1's 3 and 1.
    found = evaluate_by_relation(hand_model, hand_graph)
    assert list(found) == ["r0", "r1"]
    assert found["r0"].mrr == pytest.approx((1 / 4 + 1 / 1.5) / 2)
    assert found["r1"].mrr == pytest.approx((1 / 3 + 1) / 2)
    assert (found["r0"].head.mr, found["r0"].tail.mr) == (4.0, 1.5)
    assert found["r1"].queries == 2


def test_evaluate_overall_is_mean_over_union_of_random_ranks():
    # Overall metrics pool the 3 head and 3 tail ranks into one list of 6.
    torch.manual_seed(0)
    graph = _graph([(0, 0, 1)], [(1, 0, 2)], [(0, 0, 2), (3, 0, 4), (2, 0, 4)], 6, 1)
    model = KGModel(LookupEncoder(6, 4), DECODERS.get("distmult")(1, 4)).double()
    result = dans.evaluate(model, graph, split="test").to_dict()
    entities, relations = model()
    ranks = [
        rank_triples(
            graph.test, entities, relations, model.decoder, graph.known_triples, side == "head"
        ).realistic
        for side in ("head", "tail")
    ]
    union = torch.cat(ranks)
    assert result["mrr"] == pytest.approx((1 / union).mean().item())
    assert result["mr"] == pytest.approx(union.mean().item())
    assert result["head"]["mrr"] == pytest.approx((1 / ranks[0]).mean().item())
    assert result["tail"]["mrr"] == pytest.approx((1 / ranks[1]).mean().item())
    assert result["queries"] == 6


def test_the_result_is_typed_and_round_trips_through_its_dict(hand_graph, hand_model):
    result = dans.evaluate(hand_model, hand_graph)
    written = result.to_dict()
    assert result.mrr == result.both.mrr == written["mrr"]
    assert result.head.hits_at_3 == written["head"]["hits@3"]
    assert result.tail.ndcg_at_5 == written["tail"]["ndcg@5"]
    assert list(written) == [*METRIC_NAMES, "head", "tail", "ties", "queries", "seconds"]
    assert Evaluation.from_dict(written) == result


def test_evaluate_restores_training_mode(hand_graph, hand_model):
    hand_model.train()
    dans.evaluate(hand_model, hand_graph)
    assert hand_model.training
    hand_model.eval()
    dans.evaluate(hand_model, hand_graph)
    assert not hand_model.training


# ---------------------------------------------------------------------------------------------
# (b) The vectorised, chunked evaluator against a brute force over every candidate.
# ---------------------------------------------------------------------------------------------
BRUTE_E, BRUTE_R, BRUTE_DIM = 20, 3, 8


def _random_graph(seed):
    generator = torch.Generator().manual_seed(seed)

    def triples(n):
        heads = torch.randint(BRUTE_E, (n,), generator=generator)
        rels = torch.randint(BRUTE_R, (n,), generator=generator)
        tails = torch.randint(BRUTE_E, (n,), generator=generator)
        return torch.stack([heads, rels, tails], 1)

    train = triples(120)
    test = torch.cat([triples(14), train[:2]])  # also a test triple that is in train
    return KnowledgeGraph(
        entity_names=[f"e{i}" for i in range(BRUTE_E)],
        relation_names=[f"r{i}" for i in range(BRUTE_R)],
        train=train,
        valid=triples(20),
        test=test,
    )


def _brute_force(graph, entities, relations, decoder, predict_head):
    """better / equal counts, one candidate triple and one decoder.score call at a time."""
    known = {tuple(t) for split in (graph.train, graph.valid, graph.test) for t in split.tolist()}
    better, equal = [], []
    for h, r, t in graph.test.tolist():
        target = decoder.score(entities[h], relations[r], entities[t]).item()
        n_better = n_equal = 0
        for c in range(len(entities)):
            candidate = (c, r, t) if predict_head else (h, r, c)
            if candidate in known:
                continue  # the filtered setting; the target itself is known too
            s = decoder.score(entities[candidate[0]], relations[r], entities[candidate[2]]).item()
            n_better += s > target
            n_equal += s == target
        better.append(n_better)
        equal.append(n_equal)
    return better, equal


def _random_embeddings(name, seed, integer):
    torch.manual_seed(seed)
    decoder = DECODERS.get(name)(BRUTE_R, BRUTE_DIM).double()
    entities = torch.randn(BRUTE_E, BRUTE_DIM, dtype=torch.float64)
    if integer:
        # Small integers: every score is computed exactly by every formula, so ties are real
        # and plentiful (duplicate entity rows make more), and both paths must see them alike.
        entities = torch.randint(-1, 2, (BRUTE_E, BRUTE_DIM)).double()
        entities[5] = entities[7]
        entities[11] = entities[3]
        with torch.no_grad():
            decoder.relation_embeddings.copy_(
                torch.randint(-1, 2, decoder.relation_embeddings.shape).double()
            )
    return decoder, entities


BRUTE_FORCE_CASES = [
    # (decoder, integer embeddings): integer embeddings make exact ties common.
    *[(name, False) for name in ("distmult", "complex", "rotate", "transe")],
    *[(name, True) for name in ("distmult", "complex", "transe")],
]


@pytest.mark.parametrize("predict_head", [False, True], ids=["tail", "head"])
@pytest.mark.parametrize(("name", "integer"), BRUTE_FORCE_CASES)
def test_vectorised_ranks_match_brute_force(name, integer, predict_head):
    graph = _random_graph(seed=5 if integer else 3)
    decoder, entities = _random_embeddings(name, seed=6 if integer else 4, integer=integer)
    relations = decoder.relations().detach()
    ranks = rank_triples(
        graph.test,
        entities,
        relations,
        decoder,
        graph.known_triples,
        predict_head,
        memory_elements=3 * BRUTE_E,  # blocks of 3 queries
    )
    better, equal = _brute_force(graph, entities, relations, decoder, predict_head)
    if integer:
        assert sum(equal) > 0  # the case is about ties
    assert ranks.better.tolist() == better
    assert ranks.equal.tolist() == equal
    assert ranks.realistic.tolist() == [1 + b + e / 2 for b, e in zip(better, equal, strict=True)]


def test_chunking_does_not_change_ranks():
    graph = _random_graph(seed=7)
    decoder, entities = _random_embeddings("distmult", seed=8, integer=True)
    relations = decoder.relations().detach()
    results = [
        rank_triples(graph.test, entities, relations, decoder, graph.known_triples, True, m)
        for m in (1, 2 * BRUTE_E, 5 * BRUTE_E + 3, 1 << 26)
    ]
    for ranks in results[1:]:
        assert torch.equal(ranks.better, results[0].better)
        assert torch.equal(ranks.equal, results[0].equal)


def _repeated_queries(seed, predict_head):
    """A random graph whose 15 test triples ask 5 queries 3 times each, in shuffled order."""
    graph = _random_graph(seed)
    generator = torch.Generator().manual_seed(seed)
    test = graph.test[:5].repeat(3, 1)
    test[:, 0 if predict_head else 2] = torch.randint(BRUTE_E, (15,), generator=generator)
    test = test[torch.randperm(15, generator=generator)]
    names = {"entity_names": graph.entity_names, "relation_names": graph.relation_names}
    return KnowledgeGraph(**names, train=graph.train, valid=graph.valid, test=test)


@pytest.mark.parametrize("predict_head", [False, True], ids=["tail", "head"])
@pytest.mark.parametrize("name", ["distmult", "rotate"])
@pytest.mark.parametrize("memory_elements", [1, 4 * BRUTE_E, 1 << 20])
def test_triples_that_ask_one_query_rank_as_each_alone(name, predict_head, memory_elements):
    graph = _repeated_queries(seed=9, predict_head=predict_head)
    decoder, entities = _random_embeddings(name, seed=10, integer=False)
    relations = decoder.relations().detach()
    ranks = rank_triples(
        graph.test, entities, relations, decoder, graph.known_triples, predict_head, memory_elements
    )
    better, equal = _brute_force(graph, entities, relations, decoder, predict_head)
    assert ranks.better.tolist() == better
    assert ranks.equal.tolist() == equal


@pytest.mark.parametrize("predict_head", [False, True], ids=["tail", "head"])
def test_a_query_asked_by_several_triples_is_scored_once(predict_head, monkeypatch):
    graph = _repeated_queries(seed=11, predict_head=predict_head)
    decoder, entities = _random_embeddings("distmult", seed=12, integer=False)
    scored = []
    score_all_tails = decoder.score_all_tails

    def counted(heads, relations, candidates):
        scored.append(len(heads))
        return score_all_tails(heads, relations, candidates)

    # Head prediction scores through score_all_tails too, with the inverse relation.
    monkeypatch.setattr(decoder, "score_all_tails", counted)
    known, relations = graph.known_triples, decoder.relations().detach()
    rank_triples(graph.test, entities, relations, decoder, known, predict_head, 1 << 20)
    assert scored == [5]
    # Blocks of 8 rows of scores: 4 triples' and their distinct queries' at a time.
    scored.clear()
    rank_triples(graph.test, entities, relations, decoder, known, predict_head, 8 * BRUTE_E)
    assert max(scored) <= 4
    assert sum(scored) < 15


def test_no_queries_gives_empty_ranks():
    graph = _random_graph(seed=1)
    decoder, entities = _random_embeddings("distmult", seed=1, integer=False)
    ranks = rank_triples(
        torch.zeros(0, 3, dtype=torch.long),
        entities,
        decoder.relations().detach(),
        decoder,
        graph.known_triples,
        False,
    )
    assert len(ranks.realistic) == 0


# ---------------------------------------------------------------------------------------------
# (c) NaN scores rank lowest.
# ---------------------------------------------------------------------------------------------
def _nan_setup(nan_entities):
    # 6 entities, 1 relation; DistMult with one-dimensional embeddings, relation 1, so
    # score(h, r, t) = x_h * x_t. Known: train (0,0,1), test (0,0,2).
    graph = _graph([(0, 0, 1)], [], [(0, 0, 2)], 6, 1)
    decoder = DECODERS.get("distmult")(1, 1).double()
    with torch.no_grad():
        decoder.relation_embeddings.fill_(1.0)
    entities = torch.tensor([[1.0], [5.0], [2.0], [3.0], [1.0], [0.5]], dtype=torch.float64)
    entities[nan_entities] = float("nan")
    return graph, decoder, entities


def test_nan_candidates_rank_below_the_target():
    # Tail query (0, 0, ?): scores x_t = [1, 5, 2, 3, 1, 0.5]; target t=2 scores 2; t=1 is
    # filtered. Entity 3 (score 3) is better. Entities 4 and 5 become NaN: without the NaN rule
    # they would compare false to everything and vanish; ranked lowest they are still below.
    graph, decoder, entities = _nan_setup([4, 5])
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.better.tolist() == [1]
    assert ranks.equal.tolist() == [0]
    # With every non-filtered candidate NaN but the target finite, the target ranks first.
    graph, decoder, entities = _nan_setup([3, 4, 5])
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.realistic.tolist() == [1.0]


def test_nan_target_ranks_last_among_unfiltered_candidates():
    # Everything NaN: the target ties with the 4 unfiltered candidates (0, 3, 4, 5) and with
    # nothing else: not with the filtered entity 1, not with itself.
    # Ranks: optimistic 1, pessimistic 5, realistic 3.
    graph, decoder, entities = _nan_setup(list(range(6)))
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.better.tolist() == [0]
    assert ranks.equal.tolist() == [4]
    # Only the target NaN: it is below every unfiltered candidate (0, 3, 4, 5).
    graph, decoder, entities = _nan_setup([2])
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.pessimistic.tolist() == [5.0]
    assert ranks.optimistic.tolist() == [5.0]


def test_evaluate_on_a_diverged_model_gives_finite_metrics():
    graph, decoder, entities = _nan_setup(list(range(6)))
    encoder = LookupEncoder(6, 1).double()
    with torch.no_grad():
        encoder.embeddings.weight.copy_(entities)
    result = dans.evaluate(KGModel(encoder, decoder), graph).to_dict()
    # Tail: 4 unfiltered ties (rank 3); head (?, 0, 2): known heads {0}, so 5 ties (rank 3.5).
    assert result["tail"]["mr"] == pytest.approx(3.0)
    assert result["head"]["mr"] == pytest.approx(3.5)
    assert math.isfinite(result["mrr"])


# ---------------------------------------------------------------------------------------------
# (d) The sign-sum count against plain comparisons, infinities and NaN included.
# ---------------------------------------------------------------------------------------------
def _comparison_counts(scores, targets, query_index, answers):
    """better / equal by comparisons, NaN counted as the lowest score, filtered cells dropped."""
    scores = scores.nan_to_num(nan=-torch.inf)
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[query_index, answers] = False
    target = scores.gather(1, targets[:, None])
    return ((scores > target) & keep).sum(1), ((scores == target) & keep).sum(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sign_counts_match_comparisons_with_ties_and_infinities(dtype):
    generator = torch.Generator().manual_seed(0)
    queries, num_entities = 40, 300
    # Few distinct values, so ties are everywhere; then infinities and NaN in some rows.
    scores = torch.randint(-3, 4, (queries, num_entities), generator=generator).to(dtype)
    specials = torch.tensor([torch.inf, -torch.inf, torch.nan], dtype=dtype)
    rows = torch.arange(0, queries, 3)
    cols = torch.randint(num_entities, (len(rows),), generator=generator)
    scores[rows, cols] = specials[torch.arange(len(rows)) % 3]
    targets = torch.randint(num_entities, (queries,), generator=generator)
    targets[:3] = cols[:1].expand(3)  # rows 0..2 each have a target that may be special
    scores[1, targets[1]], scores[2, targets[2]] = -torch.inf, torch.nan
    query_index = torch.randint(queries, (200,), generator=generator)
    answers = torch.randint(num_entities, (200,), generator=generator)
    query_index = torch.cat([query_index, torch.arange(queries)])
    answers = torch.cat([answers, targets])
    expected = _comparison_counts(scores, targets, query_index, answers)
    better, equal, unsure = ranking._count_by_sign(scores.clone(), targets, query_index, answers)
    # Rows the sign sums cannot count are exactly those with a NaN difference.
    assert unsure.any() and not unsure.all()
    exact_better, exact_equal = ranking._count_by_comparison(
        scores.clone(), targets, query_index, answers
    )
    assert exact_better.tolist() == expected[0].tolist()
    assert exact_equal.tolist() == expected[1].tolist()
    assert better[~unsure].tolist() == expected[0][~unsure].tolist()
    assert equal[~unsure].tolist() == expected[1][~unsure].tolist()


def test_infinite_scores_rank_like_comparisons():
    # DistMult with 1-d embeddings: score(0, r, t) = x_0 * x_t with x_0 = 1; test (0, 0, 2).
    graph, decoder, entities = _nan_setup([])
    entities[3] = torch.inf  # better than the finite target
    entities[4] = -torch.inf  # worse
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.better.tolist() == [1]
    assert ranks.equal.tolist() == [0]
    # A target of +inf ties with the other +inf candidate.
    entities[2] = torch.inf
    ranks = rank_triples(
        graph.test, entities, decoder.relations().detach(), decoder, graph.known_triples, False
    )
    assert ranks.better.tolist() == [0]
    assert ranks.equal.tolist() == [1]


def test_evaluate_memory_bound_does_not_change_metrics():
    graph = _random_graph(seed=9)
    decoder, entities = _random_embeddings("distmult", seed=9, integer=True)
    encoder = LookupEncoder(BRUTE_E, BRUTE_DIM).double()
    with torch.no_grad():
        encoder.embeddings.weight.copy_(entities)
    model = KGModel(encoder, decoder)
    tiny = dans.evaluate(model, graph, memory_mb=1e-6).to_dict()  # one query per block
    large = dans.evaluate(model, graph, memory_mb=64).to_dict()
    for key in ("mrr", "mr", "hits@1", "hits@10"):
        assert tiny[key] == large[key]


def test_a_sampled_rank_counts_the_drawn_entities_that_score_higher_and_are_not_known():
    """By hand: DistMult with entity i = (1, i) and the relation (0, 1) scores (1, r, t) as t;
    three entities are drawn for the query, and those that complete a known triple (the answer
    among them) are left out."""
    entities = torch.stack([torch.ones(6), torch.arange(6.0)], 1)
    relations = torch.tensor([[0.0, 1.0]])
    known = KnownTriples(torch.tensor([[1, 0, 2], [1, 0, 4]]), 6, 1)
    drawn = torch.randint(6, (1, 3), generator=torch.Generator().manual_seed(0))[0].tolist()
    ranks = rank_against_sample(
        torch.tensor([[1, 0, 2]]),
        entities,
        relations,
        DistMult(1, 2),
        known,
        False,
        3,
        torch.Generator().manual_seed(0),
    )
    # Tail 2 scores 2: better are the drawn 3 and 5 (4 is known); tied only with 2, the answer.
    assert ranks.better.tolist() == [sum(1 for d in drawn if d in (3, 5))]
    assert ranks.equal.tolist() == [0]


def test_sampled_metrics_are_named_as_sampled_and_rank_higher_than_the_full_ones(umls):
    model = build_model(dans.TrainConfig(encoder="lookup", dim=8), umls)
    full = evaluate(model, umls, "valid")
    sampled = evaluate(model, umls, "valid", candidates=20, seed=3)
    assert full.candidates == 0 and "sampled_candidates" not in full.to_dict()
    assert sampled.to_dict()["sampled_candidates"] == 20
    assert sampled.protocol == "sampled: each query against 20 random entities"
    assert Evaluation.from_dict(sampled.to_dict()) == sampled
    assert sampled.mrr > full.mrr and sampled.both.mr <= 21
    # The same seed draws the same entities; another seed others.
    assert evaluate(model, umls, "valid", candidates=20, seed=3).both == sampled.both
    assert evaluate(model, umls, "valid", candidates=20, seed=4).both != sampled.both
