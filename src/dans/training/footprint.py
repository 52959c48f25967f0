"""What a run's settings need in memory, estimated from the sizes alone before anything is
allocated, so that a run that cannot fit is refused in one line instead of failing mid-way."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dans import memory
from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import DansError

FLOAT_BYTES = 4
# Each trained value is held with its gradient and Adam's two moments.
COPIES_PER_PARAMETER = 4
# A negative's vector, its gradient and the query it is scored against.
COPIES_PER_NEGATIVE = 3
# An RGCN layer keeps its input, output and the self-loop product for the backward pass.
COPIES_PER_ENTITY_ACTIVATION = 3


@dataclass(frozen=True)
class Footprint:
    """The bytes a run's largest parts take at once, estimated from its settings and graph."""

    tables: int  # entity and relation tables and the encoder's weights, with gradients and Adam
    activations: int  # what the encoder keeps of one step for its backward pass
    negatives: int  # one batch's negatives, their gradients and queries
    evaluation: int  # the block of scores ranked at once

    @property
    def total(self) -> int:
        return self.tables + self.activations + self.negatives + self.evaluation

    def describe(self) -> str:
        parts = (
            ("tables and optimiser state", self.tables),
            ("encoder activations of one step", self.activations),
            ("negatives of one batch", self.negatives),
            ("evaluation block", self.evaluation),
        )
        return ", ".join(f"{name} {size_text(size)}" for name, size in parts)


def estimate(config: TrainConfig, kg: KnowledgeGraph) -> Footprint:
    """The :class:`Footprint` of training ``config`` on ``kg``."""
    model, training = config.model, config.training
    entities, relations, d = kg.num_entities, kg.num_relations, model.dim
    parameters = entities * d + 2 * relations * 2 * d  # relation tables up to 2d wide
    activations = 0
    if model.encoder == "rgcn":
        rgcn = config.options_of("encoder", "rgcn")
        parameters += rgcn.layers * (rgcn.bases * d * d + 2 * relations * rgcn.bases + d * d)
        edges = len(kg.train) if not training.subgraph_edges else training.subgraph_edges
        # Messages per (entity, edge type) pair, at most one per edge in each direction.
        pairs = min(2 * edges, 2 * relations * entities)
        per_layer = 2 * pairs * d + COPIES_PER_ENTITY_ACTIVATION * entities * d
        activations = rgcn.layers * per_layer * FLOAT_BYTES
    batch = min(training.batch_size, len(kg.train))
    return Footprint(
        tables=parameters * COPIES_PER_PARAMETER * FLOAT_BYTES,
        activations=activations,
        negatives=batch * training.negatives * (COPIES_PER_NEGATIVE * d + 1) * FLOAT_BYTES,
        evaluation=int(config.evaluation.eval_memory_mb * 2**20),
    )


def check_fits(config: TrainConfig, kg: KnowledgeGraph, device: torch.device) -> None:
    """Refuse, in one line with the estimate and the device's memory, settings whose
    :func:`estimate` exceeds the memory of ``device`` (where the platform says how much)."""
    footprint = estimate(config, kg)
    available = memory.total_bytes(device)
    if available is None or footprint.total <= available:
        return
    where = "this machine" if device.type == "cpu" else str(device)
    need = size_text(footprint.total)
    raise DansError(
        f"these settings need about {need} of memory ({footprint.describe()}) but {where} has "
        f"{size_text(available)}; lower --dim, --batch-size, --negatives or "
        "--eval-memory-mb"
    )


def size_text(size: int) -> str:
    """``size`` bytes in MiB below a GiB, else in GiB."""
    return f"{size / 2**20:,.0f} MiB" if size < 2**30 else f"{size / 2**30:,.1f} GiB"
