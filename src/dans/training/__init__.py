"""Training: the loss of Eq. 2, the mini-batch loop, early stopping."""

from dans.training.early_stopping import EarlyStopping
from dans.training.loss import bce_loss
from dans.training.trainer import Trainer, TrainResult

__all__ = ["EarlyStopping", "TrainResult", "Trainer", "bce_loss"]
