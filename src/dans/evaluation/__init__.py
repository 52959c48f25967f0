"""Filtered, tie-aware link-prediction evaluation."""

from dans.evaluation.metrics import evaluate, rank_metrics
from dans.evaluation.ranking import Ranks, rank_triples

__all__ = ["Ranks", "evaluate", "rank_metrics", "rank_triples"]
