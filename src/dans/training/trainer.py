"""The mini-batch training loop: sampling, Eq. 2, Adam, validation and early stopping."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import LongTensor, Tensor
from tqdm import tqdm

from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import TrainingDiverged
from dans.evaluation.metrics import evaluate
from dans.models.model import KGModel, score_triples
from dans.samplers.base import NegativeSampler, score_negatives
from dans.training.early_stopping import EarlyStopping
from dans.training.guard import guarded_step
from dans.training.loss import bce_loss
from dans.training.optim import adam

# Base-model steps skipped in a row (non-finite loss or gradient) after which training stops.
MAX_CONSECUTIVE_SKIPS = 20

EpochCallback = Callable[[dict], None]
ImprovementCallback = Callable[[int, dict], None]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` leaves behind; the model holds the best weights."""

    best_epoch: int
    best_valid: dict
    epochs_run: int
    train_seconds: float
    eval_seconds: float
    history: list[dict] = field(default_factory=list)
    skipped_steps: dict[str, int] = field(default_factory=dict)


class Trainer:
    """Trains a model with a sampler: pretraining with ``pretrain_sampler``, then ``sampler``.

    Validation runs every ``config.eval_every`` epochs and after the last one; the weights with
    the best valid MRR are restored at the end. Callbacks receive each epoch's log row and each
    new best, so the caller decides what gets written where.
    """

    def __init__(
        self,
        model: KGModel,
        kg: KnowledgeGraph,
        config: TrainConfig,
        sampler: NegativeSampler,
        pretrain_sampler: NegativeSampler,
        device: torch.device,
        on_epoch: EpochCallback | None = None,
        on_improvement: ImprovementCallback | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.kg = kg
        self.config = config
        self.sampler = sampler
        self.pretrain_sampler = pretrain_sampler
        self.device = device
        self.on_epoch = on_epoch
        self.on_improvement = on_improvement
        self.progress = progress
        self.optimizer = adam(model.parameters(), config.lr)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.train_triples = kg.train.to(device)
        self.eval_seconds = 0.0
        self.skipped_steps = 0
        self.consecutive_skips = 0

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
        entities, relations = self.model(message_triples)
        logs = sampler.update(batch, entities.detach(), relations.detach(), self.generator)
        negatives = sampler.sample(batch, entities, relations, self.generator)
        decoder = self.model.decoder
        positive_scores = score_triples(decoder, entities, relations, batch)
        negative_scores = score_negatives(batch, negatives, entities, relations, decoder)
        loss = bce_loss(positive_scores, negative_scores, negatives.weights)
        loss = loss + self.config.l2 * (entities.pow(2).mean() + decoder.penalty(relations))
        if guarded_step(self.optimizer, loss, self.config.grad_clip):
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
        logs["score_positive"] = positive_scores.mean().item()
        for group, columns in negatives.groups.items():
            logs[f"score_{group}"] = negative_scores[:, columns].mean().item()
        return logs

    def train_epoch(self, sampler: NegativeSampler) -> dict[str, float]:
        """One pass over the shuffled training triples; returns the batch means of the step logs
        (non-finite values left out) and the steps skipped in it."""
        order = torch.randperm(
            len(self.train_triples), generator=self.generator, device=self.device
        )
        skipped_before = self.skipped_steps
        sampler_skipped_before = dict(sampler.skipped_steps)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for batch, message_triples in self.batches(order):
            for key, value in self.step(batch, sampler, message_triples).items():
                if math.isfinite(value):
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
        row = {key: sums[key] / counts[key] for key in sums}
        row["skipped_steps"] = self.skipped_steps - skipped_before
        for part, total in sampler.skipped_steps.items():
            row[f"skipped_{part}_steps"] = total - sampler_skipped_before[part]
        return row

    def batches(self, order: LongTensor) -> Iterator[tuple[LongTensor, LongTensor | None]]:
        """The epoch's steps: positives (B, 3) and the triples messages pass over, (M, 3) or
        None for the encoder's own graph.

        With ``subgraph_edges``, each block of that many shuffled triples is one step's
        positives, and a random ``subgraph_split`` share of it carries the messages.
        """
        shuffled = self.train_triples[order]
        edges = self.config.subgraph_edges
        if not edges:
            for batch in shuffled.split(self.config.batch_size):
                yield batch, None
            return
        for block in shuffled.split(edges):
            kept = round(self.config.subgraph_split * len(block))
            chosen = torch.randperm(len(block), generator=self.generator, device=self.device)
            yield block, block[chosen[:kept]]

    def validate(self) -> dict:
        result = evaluate(
            self.model,
            self.kg,
            "valid",
            ties=self.config.ties,
            memory_mb=self.config.eval_memory_mb,
        )
        self.eval_seconds += result["seconds"]
        return result

    def fit(self) -> TrainResult:
        config = self.config
        total_epochs = config.pretrain_epochs + config.epochs
        stopper = EarlyStopping(config.patience)
        best_state: dict[str, Tensor] | None = None
        best_valid: dict = {}
        history: list[dict] = []
        train_seconds = 0.0
        epoch = 0
        bar = tqdm(total=total_epochs, unit="epoch", disable=not self.progress, leave=False)
        for epoch in range(1, total_epochs + 1):
            pretraining = epoch <= config.pretrain_epochs
            start = time.perf_counter()
            row = self.train_epoch(self.pretrain_sampler if pretraining else self.sampler)
            seconds = time.perf_counter() - start
            train_seconds += seconds
            row = {
                "epoch": epoch,
                "phase": "pretrain" if pretraining else "train",
                "seconds": seconds,
                "triples_per_second": len(self.train_triples) / seconds,
                **row,
            }
            if epoch % config.eval_every == 0 or epoch == total_epochs:
                valid = self.validate()
                row.update({f"valid_{k}": v for k, v in valid.items() if isinstance(v, float)})
                if stopper.update(valid["mrr"], epoch):
                    best_state = copy.deepcopy(self.model.state_dict())
                    best_valid = valid
                    if self.on_improvement:
                        self.on_improvement(epoch, valid)
            history.append(row)
            if self.on_epoch:
                self.on_epoch(row)
            bar.set_postfix(
                loss=f"{row.get('loss', math.nan):.4f}",
                triples_s=f"{row['triples_per_second']:.0f}",
                valid_mrr=f"{stopper.best:.3f}" if best_state is not None else "-",
            )
            bar.update()
            if stopper.should_stop:
                break
        bar.close()
        if best_state is None:
            # No training epoch ran: the untrained model is what gets evaluated.
            best_valid = self.validate()
            stopper.update(best_valid["mrr"], 0)
            if self.on_improvement:
                self.on_improvement(0, best_valid)
        else:
            self.model.load_state_dict(best_state)
        return TrainResult(
            best_epoch=stopper.best_epoch,
            best_valid=best_valid,
            epochs_run=epoch,
            train_seconds=train_seconds,
            eval_seconds=self.eval_seconds,
            history=history,
            skipped_steps={"base": self.skipped_steps, **self.sampler.skipped_steps},
        )
