"""The mini-batch training loop: sampling, Eq. 2, Adam, validation and early stopping."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import LongTensor, Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.distributed import broadcast_state, gather_objects, largest, world
from dans.errors import TrainingDiverged
from dans.evaluation.metrics import Evaluation, evaluate
from dans.models.gather import gather_rows
from dans.models.model import KGModel, score_triples
from dans.optim import guarded_step, model_optimizer
from dans.options import duration_seconds
from dans.samplers.base import NegativeSampler, StepContext
from dans.training.cadence import CheckpointCadence
from dans.training.callbacks import Callbacks, TrainingCallback
from dans.training.early_stopping import EarlyStopping
from dans.training.epoch_log import EpochLog, StepTotals
from dans.training.loss import bce_loss
from dans.training.schedule import lr_factor, set_lr

# Seeds of the processes' own generators in a group are this far apart (and from the shared one).
_RANK_SEED_STRIDE = 1_000_003
# Base-model steps skipped in a row (non-finite loss or gradient) after which training stops.
MAX_CONSECUTIVE_SKIPS = 20


@dataclass
class Best:
    """The best validation so far: its epoch and metrics, and the state dicts of the model and
    the sampler at that epoch."""

    epoch: int
    valid: Evaluation
    model: dict[str, Tensor]
    sampler: dict[str, Tensor]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` leaves behind; the model holds the best weights."""

    best_epoch: int
    best_valid: Evaluation
    epochs_run: int
    train_seconds: float
    eval_seconds: float
    # Training, validation and writing the run's files together: what a time budget counts.
    elapsed_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    skipped_steps: dict[str, int] = field(default_factory=dict)


class Trainer:
    """Trains a model with a sampler: pretraining with ``pretrain_sampler``, then ``sampler``.

    Each epoch sets the learning rate of :func:`~dans.training.schedule.lr_factor` (warm-up,
    then decay), pretraining epochs included. Validation runs every
    ``config.evaluation.eval_every`` epochs and after the last one; the model and the sampler
    with the best valid MRR are restored at the end. Early stopping that falls in pretraining ends
    pretraining only: the sampler's phase starts at epoch ``pretrain_epochs + 1`` with patience
    afresh, so the epoch numbers skip the pretraining epochs not run. The ``callbacks`` (see
    :class:`~dans.training.callbacks.TrainingCallback`) receive each epoch's log row, each
    validation and new best, and at the ``checkpoint_every`` cadence (epochs or a duration, see
    :class:`~dans.training.cadence.CheckpointCadence`; after the last epoch in any case) the
    state that :meth:`load_state_dict` continues from, so the caller decides what gets written
    where.

    With a ``time_budget``, the run's length is time, not epochs: each epoch's place on the
    schedule is the share of the budget spent before it, times ``epochs`` (so the warm-up, the
    decay and the validations fall where ``epochs`` epochs would put them, in proportion), and
    the last epoch is the one after which another epoch and its validation would overrun the
    budget, judged by the last epoch's and the last validation's seconds. The budget counts
    everything :meth:`fit` spends (training, validation, the callbacks writing files), resumed
    runs included.

    In a process group (see :mod:`dans.distributed`) each process trains on its own shard of
    every epoch's shuffled positives, ``batch_size / processes`` at a step, so that a step sees
    ``batch_size`` positives in all; the model is wrapped in DistributedDataParallel, and the
    samplers' states are made equal again after every epoch. The epoch's order is drawn from a
    generator shared by all processes, the negatives from one of each process's own.
    """

    def __init__(
        self,
        model: KGModel,
        kg: KnowledgeGraph,
        config: TrainConfig,
        sampler: NegativeSampler,
        pretrain_sampler: NegativeSampler,
        device: torch.device,
        callbacks: Sequence[TrainingCallback] = (),
        checkpoint_every: int | str = 1,
    ) -> None:
        self.model = model
        self.kg = kg
        self.config = config
        self.sampler = sampler
        self.pretrain_sampler = pretrain_sampler
        self.device = device
        self.callbacks = Callbacks(callbacks)
        self.checkpoint_cadence = CheckpointCadence.parse(checkpoint_every)
        self.optimizer = model_optimizer(model.parameters(), config.training.lr)
        self.world = world()
        self.generator = torch.Generator(device=device).manual_seed(config.runtime.seed)
        self.order_generator = self.generator
        self.network: nn.Module = model
        if self.world.size > 1:
            self.order_generator = torch.Generator(device=device).manual_seed(config.runtime.seed)
            own_seed = config.runtime.seed + _RANK_SEED_STRIDE * (self.world.rank + 1)
            self.generator.manual_seed(own_seed)
            # Dropout and edge dropout draw from torch's global generator, seeded alike in every
            # process to build the same model: from here on each process draws its own masks.
            torch.manual_seed(own_seed)
            # The model's buffers (the training graph) never change: no need to send them.
            self.network = DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                forward_sync_buffers=False,
            )
        self.train_triples = kg.train.to(device)
        # Where training stands: all of it is in state_dict(), so a killed run can continue.
        self.epoch = 0
        self.stopper = EarlyStopping(config.evaluation.patience)
        self.best: Best | None = None
        self.history: list[dict] = []
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.skipped_steps = 0
        self.consecutive_skips = 0
        budget = config.training.time_budget
        self.budget = duration_seconds(budget) if budget else None
        # The seconds earlier processes spent on this run, and when this one's fit() began.
        self._elapsed_before = 0.0
        self._fit_start: float | None = None
        # When fit() last handed out a state to save, on the group's clock.
        self._saved_at = 0.0
        # Whether the epoch just trained is the run's last, and what a validation last took.
        self._final = False
        self._validation_seconds = 0.0

    def step(
        self,
        batch: LongTensor,
        sampler: NegativeSampler,
        message_triples: LongTensor | None = None,
    ) -> dict[str, float]:
        """One base-model update on a batch of positives (shape (B, 3)); returns values to log.

        The sampler trains first (on detached embeddings), then draws the negatives; a step whose
        loss or gradient is not finite is skipped and counted. ``message_triples`` (shape (M, 3))
        replaces the encoder's graph for this step.
        """
        self.model.train()
        entities, relations = self.network(message_triples)
        decoder = self.model.decoder
        step = StepContext(batch, entities, relations, decoder, self.generator)
        logs = sampler.update(step.detached())
        scores: dict[str, float] = {}  # logged after the loss, as log.csv's columns have it
        if sampler.draws_negatives:
            negatives = sampler.sample(step)
            negative_scores = negatives.scores(decoder, entities, relations, batch)
            positive_scores = score_triples(decoder, entities, relations, batch)
            loss = bce_loss(positive_scores, negative_scores, negatives.weights)
            scores["score_positive"] = positive_scores.mean().item()
            for group, columns in negatives.groups.items():
                scores[f"score_{group}"] = negative_scores[:, columns].mean().item()
        else:
            loss = sampler.loss(step)
        loss = loss + self.config.training.l2 * (
            self._entity_penalty(entities, batch) + decoder.penalty(relations)
        )
        # DistributedDataParallel has averaged the model's gradients already.
        if guarded_step(self.optimizer, loss, self.config.training.grad_clip, average=False):
            self.consecutive_skips = 0
        else:
            self.skipped_steps += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                raise TrainingDiverged(
                    f"training diverged: {self.consecutive_skips} steps in a row had a "
                    "non-finite loss or gradient"
                )
        logs["loss"] = loss.item()
        return {**logs, **scores}

    def _entity_penalty(self, entities: Tensor, batch: LongTensor) -> Tensor:
        """The mean squared entry of the entity rows ``--l2-scope`` covers: the whole table
        (shape (E, d)), or the distinct heads and tails of the batch (shape (B, 3))."""
        if self.config.training.l2_scope == "table":
            return entities.pow(2).mean()
        return gather_rows(entities, torch.unique(batch[:, [0, 2]])).pow(2).mean()

    def train_epoch(self, sampler: NegativeSampler) -> StepTotals:
        """One pass over the shuffled training triples; what its steps add up to."""
        order = torch.randperm(
            len(self.train_triples), generator=self.order_generator, device=self.device
        )
        skipped_before = self.skipped_steps
        sampler_skipped_before = dict(sampler.skipped_steps)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for batch, message_triples in self.batches(self._own_share(order)):
            for key, value in self.step(batch, sampler, message_triples).items():
                if math.isfinite(value):
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
        # What a sampler learns without gradients (caches, chains, baselines, batch-norm
        # statistics) followed each process's own positives: rank 0's is kept.
        broadcast_state(sampler)
        return StepTotals(
            {key: sums[key] / counts[key] for key in sums},
            self.skipped_steps - skipped_before,
            {
                part: total - sampler_skipped_before[part]
                for part, total in sampler.skipped_steps.items()
            },
        )

    def _own_share(self, order: LongTensor) -> LongTensor:
        """This process's share of the epoch's order: every ``size``-th triple from its rank on,
        the order wrapped around so that every process has as many (and takes as many steps)."""
        size = self.world.size
        if size == 1:
            return order
        padded = order.repeat(2)[: math.ceil(len(order) / size) * size]
        return padded[self.world.rank :: size]

    def batches(self, order: LongTensor) -> Iterator[tuple[LongTensor, LongTensor | None]]:
        """The epoch's steps: positives (B, 3) and the triples messages pass over, (M, 3) or
        None for the encoder's own graph.

        With ``subgraph_edges``, each block of that many shuffled triples is one step's
        positives, and a random ``subgraph_split`` share of it carries the messages. Both sizes
        are shared among the processes of a group.
        """
        shuffled = self.train_triples[order]
        size = self.world.size
        edges = math.ceil(self.config.training.subgraph_edges / size)
        if not edges:
            for batch in shuffled.split(math.ceil(self.config.training.batch_size / size)):
                yield batch, None
            return
        for block in shuffled.split(edges):
            kept = round(self.config.training.subgraph_split * len(block))
            chosen = torch.randperm(len(block), generator=self.generator, device=self.device)
            yield block, block[chosen[:kept]]

    def validate(self) -> Evaluation:
        result = evaluate(self.model, self.kg, "valid", **self.config.ranking())
        self.eval_seconds += result.seconds
        self._validation_seconds = result.seconds
        return result

    @property
    def total_epochs(self) -> int:
        """Pretraining's epochs and the sampler's (with a time budget, the epochs the schedule
        is laid out on)."""
        return self.config.training.pretrain_epochs + self.config.training.epochs

    @property
    def elapsed_seconds(self) -> float:
        """What :meth:`fit` has spent on the run so far, in this process and the ones before."""
        running = 0.0 if self._fit_start is None else time.perf_counter() - self._fit_start
        return self._elapsed_before + running

    def fit(self) -> TrainResult:
        """Train from where the trainer stands (epoch 0, or a loaded state) to the end."""
        self._fit_start = time.perf_counter()
        self._saved_at = self._group_clock()
        self.callbacks.on_train_start(self)
        while self._more_epochs():
            self.epoch += 1
            self.callbacks.on_epoch_start(self)
            start = self._schedule_position()
            log = self._train_epoch_logged(start)
            crossed = self._validation_mark_crossed(start)
            self._final = self._is_final(log.seconds, crossed)
            if crossed or self._final:
                log.valid = self._validate_epoch()
            self.history.append(log.row())
            self.callbacks.on_epoch_end(self, log)
            trained = self.epoch
            self._end_pretraining_if_stopped()
            if self._checkpoint_due(trained):
                self.callbacks.on_checkpoint(self, self.state_dict())
                self._saved_at = self._group_clock()
        if self.best is None:
            # No training epoch ran: the untrained model is what gets evaluated.
            valid = self.validate()
            self.stopper.update(valid.mrr, 0)
            self._record_best(0, valid)
        assert self.best is not None
        self.model.load_state_dict(self.best.model)
        self.sampler.load_state_dict(self.best.sampler)
        self._elapsed_before, self._fit_start = self.elapsed_seconds, None
        result = TrainResult(
            best_epoch=self.best.epoch,
            best_valid=self.best.valid,
            epochs_run=self.epoch,
            train_seconds=self.train_seconds,
            eval_seconds=self.eval_seconds,
            elapsed_seconds=self._elapsed_before,
            history=self.history,
            skipped_steps={"base": self.skipped_steps, **self.sampler.skipped_steps},
        )
        self.callbacks.on_train_end(self, result)
        return result

    def _more_epochs(self) -> bool:
        """Whether another epoch trains: not after the last one, nor once patience ran out, nor
        past ``epochs`` (or the budget)."""
        if self._final or self.stopper.should_stop:
            return False
        if self.budget is None:
            return self.epoch < self.total_epochs
        return self._group_clock() < self.budget

    def _group_clock(self) -> float:
        """:attr:`elapsed_seconds` as the whole process group counts it (the slowest process's),
        so that every process decides alike."""
        return largest(self.elapsed_seconds, self.device)

    def _schedule_position(self) -> float:
        """Where the next epoch stands on the schedule, in epochs: its number, or with a time
        budget the share of the budget spent, times ``epochs`` (fractional)."""
        if self.budget is None:
            return self.epoch
        return 1 + self._group_clock() / self.budget * self.total_epochs

    def _validation_mark_crossed(self, start: float) -> bool:
        """Whether the epoch just trained, which began at schedule position ``start``, reached
        a validation of the schedule: every ``eval_every`` epochs (and where pretraining hands
        over its best weights), or with a budget where the epochs done on the schedule passed a
        multiple of ``eval_every``."""
        every, training = self.config.evaluation.eval_every, self.config.training
        if self.budget is not None:
            # A position is 1 + the epochs done before it.
            return (self._schedule_position() - 1) // every > (start - 1) // every
        return self.epoch % every == 0 or (
            training.pretrain_restore_best and self.epoch == training.pretrain_epochs
        )

    def _is_final(self, epoch_seconds: float, validating: bool) -> bool:
        """Whether the epoch just trained (in ``epoch_seconds``, to be validated or not) is the
        last: the last of ``epochs``, or the last that leaves the budget room for itself."""
        if self.budget is None:
            return self.epoch == self.total_epochs
        # Another epoch as long as this one, its validation, and this epoch's own if due.
        needed = epoch_seconds + self._validation_seconds * (1 + validating)
        return self._group_clock() + needed > self.budget

    def _train_epoch_logged(self, position: float) -> EpochLog:
        """Train epoch ``self.epoch`` with its phase's sampler at the learning rate of schedule
        ``position``; its log, without validation."""
        config, epoch = self.config.training, self.epoch
        pretraining = epoch <= config.pretrain_epochs
        if self._starts_from_pretrained_best(epoch):
            assert self.best is not None
            # Only the weights: the optimiser's moments and the random streams go on, and
            # patience counts afresh for the sampler.
            self.model.load_state_dict(self.best.model)
            self.stopper.checks_without_improvement = 0
        lr = config.lr * lr_factor(
            position, self.total_epochs, config.lr_warmup_epochs, config.lr_decay
        )
        set_lr(self.optimizer, lr)
        start = time.perf_counter()
        steps = self.train_epoch(self.pretrain_sampler if pretraining else self.sampler)
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        return EpochLog(
            epoch=epoch,
            phase="pretrain" if pretraining else "train",
            seconds=seconds,
            triples_per_second=len(self.train_triples) / seconds,
            lr=lr,
            steps=steps,
        )

    def _validate_epoch(self) -> dict[str, float]:
        """Validate, keep a new best; the validation metrics, by name."""
        valid = self.validate()
        self.callbacks.on_validation(self, valid)
        if self.stopper.update(valid.mrr, self.epoch):
            self._record_best(self.epoch, valid)
        return {k: v for k, v in valid.to_dict().items() if isinstance(v, float)}

    def _end_pretraining_if_stopped(self) -> None:
        """Patience that ran out in pretraining ends pretraining only: the sampler's phase
        starts next, patience afresh (from pretraining's best weights when asked)."""
        if self.epoch <= self.config.training.pretrain_epochs and self.stopper.should_stop:
            self.epoch = self.config.training.pretrain_epochs
            self.stopper.checks_without_improvement = 0

    def _checkpoint_due(self, trained: int) -> bool:
        """Whether a checkpoint follows epoch ``trained``: at the cadence, and after the last
        (unless the cadence is never)."""
        cadence = self.checkpoint_cadence
        if cadence == CheckpointCadence():
            return False
        # The group's slowest clock, so that every process decides alike.
        since = self._group_clock() - self._saved_at
        return cadence.due(trained, since) or self._final or self.stopper.should_stop

    def _starts_from_pretrained_best(self, epoch: int) -> bool:
        """Whether ``epoch`` is the sampler's first and starts from pretraining's best weights."""
        pretrain_epochs = self.config.training.pretrain_epochs
        return (
            self.config.training.pretrain_restore_best
            and pretrain_epochs > 0
            and epoch == pretrain_epochs + 1
            and self.best is not None
        )

    def _record_best(self, epoch: int, valid: Evaluation) -> None:
        self.best = Best(
            epoch,
            valid,
            copy.deepcopy(self.model.state_dict()),
            copy.deepcopy(self.sampler.state_dict()),
        )
        self.callbacks.on_best(self, self.best)

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`fit` needs to go on after the last finished epoch exactly as if it
        had never stopped: weights, optimizers, both samplers, random states, early stopping,
        the best so far, the log and the counters."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.training_state(),
            "pretrain_sampler": self.pretrain_sampler.training_state(),
            "random": gather_objects(self._random_states()),
            "stopper": self.stopper.state_dict(),
            # Plain containers only: the state file is read back without running its code.
            "best": None
            if self.best is None
            else {**vars(self.best), "valid": self.best.valid.to_dict()},
            "history": self.history,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "final": self._final,
            "validation_seconds": self._validation_seconds,
            "skipped_steps": self.skipped_steps,
            "consecutive_skips": self.consecutive_skips,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; raises ``KeyError``, ``TypeError`` or
        ``RuntimeError`` when it does not fit this trainer's model and samplers."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_training_state(state["sampler"])
        self.pretrain_sampler.load_training_state(state["pretrain_sampler"])
        if len(state["random"]) != self.world.size:
            raise ValueError(
                f"saved by {len(state['random'])} processes, resumed by {self.world.size}"
            )
        self._set_random_states(state["random"][self.world.rank])
        self.stopper.load_state_dict(state["stopper"])
        best = state["best"]
        self.best = (
            None if best is None else Best(**{**best, "valid": Evaluation.from_dict(best["valid"])})
        )
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.train_seconds = float(state["train_seconds"])
        self.eval_seconds = float(state["eval_seconds"])
        # States saved before these were kept: their training and validation time, no flags.
        self._elapsed_before = float(
            state.get("elapsed_seconds", self.train_seconds + self.eval_seconds)
        )
        self._final = bool(state.get("final", False))
        self._validation_seconds = float(state.get("validation_seconds", 0.0))
        self.skipped_steps = int(state["skipped_steps"])
        self.consecutive_skips = int(state["consecutive_skips"])

    def _random_states(self) -> dict[str, Tensor]:
        # Dropout, edge dropout and DANS's noise draw from torch's global generator.
        states = {
            "order": self.order_generator.get_state(),
            "trainer": self.generator.get_state(),
            "torch": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def _set_random_states(self, states: dict[str, Tensor]) -> None:
        if (self.device.type == "cuda") != ("cuda" in states):
            raise KeyError("random states saved on another kind of device")
        self.order_generator.set_state(states["order"])
        self.generator.set_state(states["trainer"])
        torch.set_rng_state(states["torch"])
        if "cuda" in states:
            torch.cuda.set_rng_state(states["cuda"], self.device)
