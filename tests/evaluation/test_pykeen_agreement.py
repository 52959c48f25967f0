"""This evaluator against PyKEEN's RankBasedEvaluator on the same score matrices: filtered,
realistic ranks (ties broken at random in expectation), both sides."""

import pytest
import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.typing import LABEL_HEAD, LABEL_TAIL

import dans
from dans.builders import build_model
from dans.models.decoders import DistMult


class CoarseDistMult(DistMult):
    """DistMult with its scores rounded to quarters, so that many candidates tie."""

    name = ""  # not registered: a test's decoder

    def score(self, heads, relations, tails):
        return torch.round(super().score(heads, relations, tails) * 4) / 4

    def score_all_tails(self, heads, relations, entities):
        return torch.round(super().score_all_tails(heads, relations, entities) * 4) / 4

    def score_all_heads(self, relations, tails, entities):
        return torch.round(super().score_all_heads(relations, tails, entities) * 4) / 4


def _pykeen_metrics(model, kg):
    """PyKEEN's metrics from the full score matrices of the test triples, every other known
    answer removed (set to NaN, as PyKEEN's own filtering does)."""
    entities, relations = model.inference()
    triples = kg.test
    evaluator = RankBasedEvaluator()  # its defaults include Hits@1, 3 and 10
    sides = (
        (LABEL_HEAD, 0, 2, lambda r, a: model.decoder.score_all_heads(r, a, entities)),
        (LABEL_TAIL, 2, 0, lambda r, a: model.decoder.score_all_tails(a, r, entities)),
    )
    for label, target_col, anchor_col, score in sides:
        scores = score(relations[triples[:, 1]], entities[triples[:, anchor_col]]).clone()
        targets = triples[:, target_col]
        true_scores = scores.gather(1, targets[:, None]).clone()
        query, answer = kg.known_triples.answers(
            triples[:, anchor_col], triples[:, 1], predict_head=label == LABEL_HEAD
        )
        others = answer != targets[query]
        scores[query[others], answer[others]] = float("nan")
        evaluator.process_scores_(
            hrt_batch=triples, target=label, scores=scores, true_scores=true_scores
        )
    return evaluator.finalize()


@pytest.mark.parametrize("decoder", [DistMult, CoarseDistMult])
def test_filtered_realistic_metrics_equal_pykeens(umls, decoder, one_thread):
    torch.manual_seed(0)
    model = build_model(dans.TrainConfig(encoder="lookup", dim=16, device="cpu"), umls)
    coarse = decoder(umls.num_relations, 16)
    coarse.load_state_dict(model.decoder.state_dict())
    model.decoder = coarse
    ours = dans.evaluate(model, umls, "test", ties="realistic")
    theirs = _pykeen_metrics(model, umls)
    if decoder is CoarseDistMult:
        assert ours.both.mrr != dans.evaluate(model, umls, "test", ties="optimistic").both.mrr
    for side, metrics in (("both", ours.both), ("head", ours.head), ("tail", ours.tail)):
        expected = {
            "mrr": "inverse_harmonic_mean_rank",
            "mr": "arithmetic_mean_rank",
            "hits_at_1": "hits_at_1",
            "hits_at_3": "hits_at_3",
            "hits_at_10": "hits_at_10",
        }
        for mine, pykeen_name in expected.items():
            value = theirs.get_metric(f"{side}.realistic.{pykeen_name}")
            # PyKEEN averages in float32: an MR near 60 is held to about 4e-6, so 1e-6 is
            # relative there; every other metric lies in (0, 1].
            close = (
                pytest.approx(value, rel=1e-6) if mine == "mr" else pytest.approx(value, abs=1e-6)
            )
            assert getattr(metrics, mine) == close, (side, mine)
