"""What happens around training without being training: the hooks a :class:`Trainer` calls at
each point of a run, and the callbacks that the training layer itself provides.

A callback subclasses :class:`TrainingCallback` and overrides the hooks it needs; a trainer
calls its callbacks in the order it was given them, so that a callback that may stop the run
(a pruner raising) comes after those that record the epoch. The run directory's writer, the
trackers and the Optuna pruner are callbacks of the layers that own them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from dans.evaluation.metrics import Evaluation
from dans.training.epoch_log import EpochLog

if TYPE_CHECKING:
    from dans.training.trainer import Best, Trainer, TrainResult


class TrainingCallback:
    """The points of a run a callback can act at; each hook does nothing unless overridden.
    ``trainer`` is the :class:`Trainer` that calls it, ``trainer.epoch`` the epoch at hand."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first epoch trained from here (the first, or the one after a resume)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before epoch ``trainer.epoch`` trains."""

    def on_validation(self, trainer: Trainer, valid: Evaluation) -> None:
        """After the validation of epoch ``trainer.epoch``."""

    def on_best(self, trainer: Trainer, best: Best) -> None:
        """When ``best`` became the best validation so far; ``best`` holds its weights."""

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        """After epoch ``trainer.epoch``, with its log (``log.row()`` is log.csv's row)."""

    def on_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """When a checkpoint is due: ``state`` is what :meth:`Trainer.load_state_dict` goes on
        from. In a process group every process gets it."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """After the last epoch, the best weights restored."""


class Callbacks(TrainingCallback):
    """Callbacks called in turn, as one."""

    def __init__(self, callbacks: Sequence[TrainingCallback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_train_start(self, trainer: Trainer) -> None:
        for callback in self.callbacks:
            callback.on_train_start(trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        for callback in self.callbacks:
            callback.on_epoch_start(trainer)

    def on_validation(self, trainer: Trainer, valid: Evaluation) -> None:
        for callback in self.callbacks:
            callback.on_validation(trainer, valid)

    def on_best(self, trainer: Trainer, best: Best) -> None:
        for callback in self.callbacks:
            callback.on_best(trainer, best)

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(trainer, log)

    def on_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(trainer, state)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        for callback in self.callbacks:
            callback.on_train_end(trainer, result)


class ProgressBar(TrainingCallback):
    """A progress bar over the run's epochs (seconds, for a run with a time budget), with the
    last loss, the speed and the best valid MRR; it leaves nothing on the terminal when the run
    ends."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.budget is not None:
            self.bar = tqdm(
                total=round(trainer.budget),
                initial=round(trainer.elapsed_seconds),
                unit="s",
                leave=False,
            )
            return
        self.bar = tqdm(
            total=trainer.total_epochs, initial=trainer.epoch, unit="epoch", leave=False
        )

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        assert self.bar is not None
        self.bar.set_postfix(
            loss=f"{log.loss:.4f}",
            triples_s=f"{log.triples_per_second:.0f}",
            valid_mrr=f"{trainer.stopper.best:.3f}" if trainer.best is not None else "-",
        )
        # Pretraining that stopped early skipped the rest of its epochs.
        done = trainer.epoch if trainer.budget is None else round(trainer.elapsed_seconds)
        self.bar.update(min(done, self.bar.total) - self.bar.n)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        assert self.bar is not None
        self.bar.close()
