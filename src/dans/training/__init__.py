"""Training: the loss of Eq. 2, the mini-batch loop and its callbacks, early stopping, how often
the state is saved."""

from dans.training.cadence import CheckpointCadence
from dans.training.callbacks import Callbacks, ProgressBar, TrainingCallback
from dans.training.early_stopping import EarlyStopping
from dans.training.epoch_log import EpochLog, StepTotals
from dans.training.loss import bce_loss
from dans.training.trainer import Trainer, TrainResult

__all__ = [
    "Callbacks",
    "CheckpointCadence",
    "EarlyStopping",
    "EpochLog",
    "ProgressBar",
    "StepTotals",
    "TrainResult",
    "Trainer",
    "TrainingCallback",
    "bce_loss",
]
