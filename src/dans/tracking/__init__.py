"""Experiment trackers: each run's settings, per-epoch metrics and final test metrics logged to
CSV files, TensorBoard or MLflow (``--tracker``, repeatable)."""

from dans.tracking import csv_file, mlflow, tensorboard
from dans.tracking.base import NO_TRACKERS, TRACKERS, RunTracker, Tracker, TrackerSpec

__all__ = [
    "NO_TRACKERS",
    "TRACKERS",
    "RunTracker",
    "Tracker",
    "TrackerSpec",
    "csv_file",
    "mlflow",
    "tensorboard",
]
