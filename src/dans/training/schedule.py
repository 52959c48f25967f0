"""The learning-rate schedule: linear warm-up, then constant, cosine or linear decay, by epoch.

The factor is a pure function of the epoch, so a resumed run sets the same rate as one that never
stopped without saving any scheduler state. A run with a time budget passes a fractional epoch:
its place on the schedule (see :class:`~dans.training.trainer.Trainer`).
"""

from __future__ import annotations

import math

from dans.config import LR_DECAYS
from dans.optim import Optimizer


def lr_factor(epoch: float, total: int, warmup: int, decay: str) -> float:
    """The share of the base learning rate used in ``epoch`` (1-based) of ``total``.

    The first ``warmup`` epochs ramp up linearly (``epoch / (warmup + 1)``, never 0); the
    epochs after them keep the full rate (``none``) or decay from it towards 0 at epoch
    ``total + 1`` along a half cosine (``cosine``) or a straight line (``linear``), so the last
    epoch still learns.
    """
    if epoch <= warmup:
        return epoch / (warmup + 1)
    if decay == "none":
        return 1.0
    progress = (epoch - warmup - 1) / max(1, total - warmup)
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if decay == "linear":
        return 1.0 - progress
    raise ValueError(f"unknown learning-rate decay {decay!r}; expected one of {LR_DECAYS}")


def set_lr(optimizer: Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
