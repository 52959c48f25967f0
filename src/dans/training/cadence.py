"""How often a run saves the training state that a killed run resumes from."""

from __future__ import annotations

from dataclasses import dataclass

from dans.options import duration_seconds


@dataclass(frozen=True)
class CheckpointCadence:
    """Every ``epochs`` epochs, or after each epoch that ends ``seconds`` or more of the run after
    the last save; neither set: never. The trainer saves after the last epoch in any case.

    Saving a large graph's state takes a noticeable share of a short run (a fifth of a second
    for WN18RR's), so a run to a time budget may rather save by the clock than every epoch.
    """

    epochs: int = 0
    seconds: float = 0.0

    @classmethod
    def parse(cls, value: int | str) -> CheckpointCadence:
        """``value``: a count of epochs (an int, or its digits; 0: never) or a duration
        (``90s``, ``5m``, ``1.5h``). Raises ``ValueError`` on anything else."""
        if isinstance(value, bool):
            raise ValueError(f"not a count of epochs or a duration: {value!r}")
        if isinstance(value, int) or value.strip().isdigit():
            epochs = int(value)
            if epochs < 0:
                raise ValueError(f"a count of epochs must be at least 0, got {epochs}")
            return cls(epochs=epochs)
        return cls(seconds=duration_seconds(value))

    def due(self, epoch: int, seconds_since_save: float) -> bool:
        """Whether the state is saved after ``epoch``, ``seconds_since_save`` of the run after
        the last save (or the start)."""
        if self.epochs:
            return epoch % self.epochs == 0
        return bool(self.seconds) and seconds_since_save >= self.seconds
