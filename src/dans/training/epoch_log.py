"""One epoch's record, as the trainer makes it and its callbacks receive it; ``log.csv``'s row
is made from it here and nowhere else."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class StepTotals(NamedTuple):
    """What an epoch's steps add up to: the means of their logged values (the loss, the mean
    score of each group of negatives, the sampler's own values; non-finite ones left out), the
    base model's steps skipped, and the steps each learning part of the sampler skipped."""

    means: dict[str, float]
    skipped_steps: int
    sampler_skipped_steps: dict[str, int]


@dataclass
class EpochLog:
    """One epoch: its number and phase (``pretrain`` or ``train``), its training time and
    speed, the learning rate it trained at, what its steps add up to, and its validation
    metrics (``mrr``, ``hits@10``, ...; empty where it was not validated)."""

    epoch: int
    phase: str
    seconds: float
    triples_per_second: float
    lr: float
    steps: StepTotals
    valid: dict[str, float] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The mean loss of the epoch's steps; NaN where none had a finite one."""
        return self.steps.means.get("loss", math.nan)

    def row(self) -> dict[str, Any]:
        """``log.csv``'s row: the epoch's fields, the step means, the skipped steps (the
        sampler's as ``skipped_<part>_steps``), then the validation metrics as ``valid_*``."""
        return {
            "epoch": self.epoch,
            "phase": self.phase,
            "seconds": self.seconds,
            "triples_per_second": self.triples_per_second,
            "lr": self.lr,
            **self.steps.means,
            "skipped_steps": self.steps.skipped_steps,
            **{
                f"skipped_{part}_steps": count
                for part, count in self.steps.sampler_skipped_steps.items()
            },
            **{f"valid_{key}": value for key, value in self.valid.items()},
        }
