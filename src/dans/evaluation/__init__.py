"""Filtered, tie-aware link-prediction evaluation."""

from dans.evaluation.metrics import Evaluation, RankMetrics, evaluate
from dans.evaluation.ranking import Ranks, rank_triples

__all__ = ["Evaluation", "RankMetrics", "Ranks", "evaluate", "rank_triples"]
