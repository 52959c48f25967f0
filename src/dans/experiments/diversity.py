"""Diversity of a sampler's negatives, measured: spread, coverage, entropy, false negatives and
decoder scores, for any sampler, over the train positives."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import LongTensor, Tensor

from dans.data.graph import KnowledgeGraph, KnownTriples
from dans.models.model import KGModel, score_triples
from dans.samplers.base import Negatives, NegativeSampler, StepContext, corrupt
from dans.samplers.snap import nearest_entities

# Train positives measured by default: enough for stable figures, bounded on large graphs.
DIVERSITY_POSITIVES = 10_000
# What each number means; the same keys head diversity.json and results.csv's extra columns.
DEFINITIONS = {
    "mean_pairwise_distance": "mean Euclidean distance between two negatives of one positive, "
    "averaged over positives (the negatives' embeddings as the sampler made them)",
    "coverage": "distinct entities among all negatives / number of entities",
    "entropy": "Shannon entropy, in nats, of the entities of all negatives (at most log E)",
    "false_negative_rate": "share of negatives that are true triples of valid or test but not "
    "of train: mistakes that filtering against train cannot see",
    "mean_negative_score": "mean decoder logit of the negatives",
}
DIVERSITY_COLUMNS = tuple(DEFINITIONS)


@dataclass
class _Tally:
    """Running sums over mini-batches for one group of negative columns."""

    num_entities: int
    negatives: int = 0
    positives: int = 0
    distance_sum: float = 0.0
    false_negatives: int = 0
    score_sum: float = 0.0
    counts: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.counts = torch.zeros(self.num_entities, dtype=torch.long)

    def add(self, embeddings: Tensor, ids: LongTensor, false: Tensor, scores: Tensor) -> None:
        """One batch: embeddings (B, K, d), ids (B, K), false (B, K) bool, scores (B, K)."""
        batch, width = ids.shape
        self.negatives += batch * width
        self.positives += batch
        if width > 1:
            pairwise = torch.cdist(embeddings, embeddings).sum((1, 2)) / (width * (width - 1))
            self.distance_sum += pairwise.sum().item()
        self.counts += torch.bincount(ids.flatten().cpu(), minlength=self.num_entities)
        self.false_negatives += int(false.sum().item())
        self.score_sum += scores.sum().item()

    def summary(self, width: int) -> dict[str, float | int | None]:
        share = self.counts[self.counts > 0].double() / max(1, self.negatives)
        return {
            "negatives_per_positive": width,
            "mean_pairwise_distance": self.distance_sum / self.positives if width > 1 else None,
            "coverage": int((self.counts > 0).sum()) / self.num_entities,
            "distinct_entities": int((self.counts > 0).sum()),
            "entropy": float(-(share * share.log()).sum()),
            "false_negative_rate": self.false_negatives / max(1, self.negatives),
            "mean_negative_score": self.score_sum / max(1, self.negatives),
        }


@torch.no_grad()
def measure_diversity(
    model: KGModel,
    sampler: NegativeSampler,
    kg: KnowledgeGraph,
    seed: int,
    max_positives: int = 0,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """Draw the sampler's negatives for the train positives (a seeded random ``max_positives`` of
    them when that is set and smaller) and measure them; see :data:`DEFINITIONS`.

    Negatives that are vectors rather than entities (DANS in its continuous mode) count as their
    nearest entity for coverage, entropy and false negatives. Named groups of negative columns
    (DANS's pathways, its uniform share) are measured on their own too, under ``groups``. A
    sampler that draws no negatives (every entity is one) has nothing to measure, and says so.
    """
    if not sampler.draws_negatives:
        return {"dataset": kg.name, "negatives": f"every entity, for each query ({sampler.name})"}
    model.eval()
    sampler.eval()
    entities, relations = model.inference()
    device = entities.device
    generator = torch.Generator(device=device).manual_seed(seed)
    positives = kg.train
    if 0 < max_positives < len(positives):
        order = torch.randperm(len(positives), generator=torch.Generator().manual_seed(seed))
        positives = positives[order[:max_positives]]
    heldout = _held_out_truths(kg)
    tallies: dict[str, _Tally] = {}
    widths: dict[str, int] = {}
    positive_score = 0.0
    snapped = False
    for start in range(0, len(positives), batch_size):
        batch = positives[start : start + batch_size].to(device)
        negatives = sampler.sample(
            StepContext(batch, entities, relations, model.decoder, generator)
        )
        ids = negatives.ids
        if ids is None:
            ids, snapped = _nearest(negatives, entities), True
        triples = corrupt(batch, negatives.head_replaced, ids)
        false = heldout.contains(triples) if heldout is not None else torch.zeros_like(ids).bool()
        scores = negatives.scores(model.decoder, entities, relations, batch)
        positive_score += score_triples(model.decoder, entities, relations, batch).sum().item()
        for name, columns in {"all": slice(None), **negatives.groups}.items():
            tally = tallies.setdefault(name, _Tally(kg.num_entities))
            widths[name] = ids[:, columns].shape[1]
            tally.add(
                negatives.embeddings[:, columns],
                ids[:, columns],
                false[:, columns],
                scores[:, columns],
            )
    overall = tallies.pop("all")
    return {
        "dataset": kg.name,
        "positives": len(positives),
        **overall.summary(widths["all"]),
        "max_entropy": math.log(kg.num_entities),
        "mean_positive_score": positive_score / max(1, len(positives)),
        "entities_by": "nearest entity to each vector" if snapped else "the sampler's own ids",
        "groups": {name: tally.summary(widths[name]) for name, tally in tallies.items()},
        "definitions": DEFINITIONS,
    }


def _held_out_truths(kg: KnowledgeGraph) -> KnownTriples | None:
    """Valid and test triples that are not train triples; None when there are none."""
    heldout = torch.cat([kg.valid, kg.test])
    heldout = heldout[~kg.train_known_triples.contains(heldout)]
    if len(heldout) == 0:
        return None
    return KnownTriples(heldout, kg.num_entities, kg.num_relations)


def _nearest(negatives: Negatives, entities: Tensor) -> LongTensor:
    """The entity nearest each negative vector: shape (B, K)."""
    ids = nearest_entities(negatives.embeddings.flatten(0, 1), entities)
    return ids.view(negatives.embeddings.shape[:2])
