"""Filtered, tie-aware link-prediction evaluation."""

from dans.evaluation.metrics import Evaluation, RankMetrics, evaluate, evaluate_by_relation
from dans.evaluation.ranking import Ranks, rank_triples

__all__ = [
    "Evaluation",
    "RankMetrics",
    "Ranks",
    "evaluate",
    "evaluate_by_relation",
    "rank_triples",
]
