"""Samplers that need no learning: uniform (Rand), popularity (Pop), self-adversarial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.models.context import BuildContext
from dans.options import Options, option
from dans.samplers.base import Negatives, NegativeSampler, StepContext


@dataclass(frozen=True)
class UniformOptions(Options):
    prefix: ClassVar[str] = "uniform_"

    shared_by: int = option(
        1,
        "consecutive positives of a batch that share one draw of negative entities (each "
        "replaces its own side of them): a step then touches batch x negatives / shared_by "
        "entity rows, and a bilinear decoder scores each group in one matrix product; 1 draws "
        "for every positive alone",
        minimum=1,
    )


def uniform_ids(
    num_entities: int, head_replaced: BoolTensor, generator: torch.Generator, shared_by: int = 1
) -> LongTensor:
    """Entities drawn uniformly, one per negative: shape (B, K) like ``head_replaced``, each
    ``shared_by`` consecutive rows one draw (the last group may be shorter)."""
    batch, k = head_replaced.shape
    groups = -(-batch // shared_by)
    ids = torch.randint(num_entities, (groups, k), generator=generator, device=generator.device)
    return ids.repeat_interleave(shared_by, 0)[:batch]


class UniformSampler(NegativeSampler):
    """Every entity equally likely: the paper's Rand.

    ``shared_by``: how many consecutive positives share one draw of K entities, as
    PyTorch-BigGraph's and DGL-KE's chunked negatives do; a known-true negative of a shared
    draw is dropped (zero weight) rather than redrawn, which would undo the sharing.
    """

    name = "uniform"
    options_type = UniformOptions
    options: UniformOptions

    @property
    def negatives_shared_by(self) -> int:
        return self.options.shared_by

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        return uniform_ids(self.num_entities, head_replaced, step.generator, self.options.shared_by)


class UniformDraws(NegativeSampler):
    """Uniform entities, a draw for every positive: what self-adv, CAKE and SMiLE weigh or
    replace, under options of their own."""

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        return uniform_ids(self.num_entities, head_replaced, step.generator)


class PopularitySampler(NegativeSampler):
    """Entities drawn in proportion to how often they occur in train: the paper's Pop."""

    name = "popularity"
    ids_only_settings: ClassVar[dict[str, Any] | None] = {}

    @classmethod
    def from_context(cls, context: BuildContext, options: Options | None) -> PopularitySampler:
        return cls(
            context.num_entities,
            context.num_negatives,
            context.entity_counts,
            context.known_triples,
            context.filter_negatives,
        )

    def __init__(
        self,
        num_entities: int,
        num_negatives: int,
        entity_counts: Tensor,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
    ) -> None:
        """``entity_counts``: shape (E,), occurrences of each entity as head or tail in train."""
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives)
        self.register_buffer("cumulative", torch.cumsum(entity_counts.double(), 0))

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        # Inverse-CDF sampling: one uniform number and one binary search per negative.
        total = self.cumulative[-1]
        generator = step.generator
        u = torch.rand(head_replaced.shape, generator=generator, device=generator.device)
        return torch.searchsorted(self.cumulative, u.double() * total, right=True).clamp_max(
            self.num_entities - 1
        )


@dataclass(frozen=True)
class SelfAdversarialOptions(Options):
    prefix: ClassVar[str] = "self_adv_"
    renamed: ClassVar[dict[str, str]] = {"adversarial_temperature": "self_adv_alpha"}

    alpha: float = option(
        1.0,
        "sharpness alpha of the weights softmax(alpha * score); 1 / alpha is their temperature",
        above=0.0,
    )


class SelfAdversarialSampler(UniformDraws):
    """Uniform negatives weighted by ``softmax(alpha * score)`` (Sun et al., 2019).

    Weights are detached, so harder negatives count more without pushing gradients through the
    weighting; they are scaled to average 1 per positive, like uniform weights.
    """

    name = "self-adv"
    options_type = SelfAdversarialOptions
    options: SelfAdversarialOptions

    def weigh(self, step: StepContext, negatives: Negatives) -> Tensor:
        return adversarial_weights(step, negatives, self.options.alpha)


def adversarial_weights(step: StepContext, negatives: Negatives, alpha: float) -> Tensor:
    """``softmax(alpha * score)`` over each positive's negatives, scaled to average 1: shape
    (B, K), detached. ``alpha`` is a sharpness, the inverse of a temperature: every option named
    ``alpha`` multiplies scores, every one named ``temperature`` divides them."""
    with torch.no_grad():
        scores = negatives.scores(step.decoder, step.entities, step.relations, step.positives)
        return torch.softmax(alpha * scores, dim=1) * scores.shape[1]
