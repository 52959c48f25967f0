"""Early stopping on a validation metric that should go up."""

from __future__ import annotations


class EarlyStopping:
    """Tracks the best value seen and how many checks in a row failed to beat it.

    ``patience`` of 0 never stops.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = float("-inf")
        self.best_epoch = 0
        self.checks_without_improvement = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record a validation result; returns True when it is a new best."""
        if value > self.best:
            self.best, self.best_epoch = value, epoch
            self.checks_without_improvement = 0
            return True
        self.checks_without_improvement += 1
        return False

    def state_dict(self) -> dict[str, float | int]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "checks_without_improvement": self.checks_without_improvement,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.checks_without_improvement = int(state["checks_without_improvement"])

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.checks_without_improvement >= self.patience
