"""The hardest real negatives a trained DANS generator proposes for one query."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.models.model import KGModel
from dans.samplers.base import StepContext
from dans.samplers.dans.sampler import DANSSampler
from dans.samplers.snap import nearest_allowed

PATHWAY_LABELS = {"entity": "G_E", "relation": "G_R"}


@dataclass
class HardNegatives:
    """Candidates for one query, hardest (highest score) first. All shapes (n,).

    ``pathways`` names the pathways whose fakes snapped to each entity (``G_E``, ``G_R`` or
    ``G_E+G_R``); ``distances`` is the distance from the entity to the nearest of those fakes.
    """

    ids: LongTensor
    scores: Tensor
    distances: Tensor
    pathways: list[str]


@torch.no_grad()
def hardest_negatives(
    model: KGModel,
    sampler: DANSSampler,
    known: KnownTriples,
    anchor: int,
    relation: int,
    replace_head: bool,
    k: int = 10,
    samples: int = 100,
    seed: int = 0,
) -> HardNegatives:
    """Snap ``samples`` fakes per pathway to their ``k`` nearest allowed real entities, score the
    union with the decoder, and keep the ``k`` highest.

    The query is ``(anchor, relation, ?)``, or ``(?, relation, anchor)`` when ``replace_head``;
    an entity is allowed when it completes no triple in ``known``. Runs the model and the
    generator in evaluation mode (batch normalisation from its running statistics).
    """
    model.eval()
    sampler.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    entities, relations = model.inference()
    positive = torch.tensor([[anchor, relation, anchor]], device=device)
    step = StepContext(positive, entities, relations, model.decoder, generator)
    conditioning = sampler.conditions(step)
    sides = {
        name: torch.full((1, samples), replace_head, device=device) for name in sampler.pathways
    }
    fakes = sampler.generate(conditioning, sides, generator)
    k = min(k, len(entities))
    snapped = {}
    for name, fake in fakes.items():
        ids, distances = nearest_allowed(
            fake[0],
            positive[:, 0].expand(samples),
            positive[:, 1].expand(samples),
            sides[name][0],
            entities,
            known,
            k=k,
        )
        allowed = distances.isfinite()
        snapped[name] = (ids[allowed], distances[allowed])
    candidates = torch.unique(torch.cat([ids for ids, _ in snapped.values()]))
    nearest = torch.full((len(candidates),), torch.inf, device=device)
    made_by = torch.zeros(len(candidates), len(snapped), dtype=torch.bool, device=device)
    for p, (ids, distances) in enumerate(snapped.values()):
        slots = torch.searchsorted(candidates, ids)
        nearest.scatter_reduce_(0, slots, distances, "amin")
        made_by[slots, p] = True
    side = torch.tensor(replace_head, device=device)
    rel = model.decoder.query_relations(relations[relation], side).expand(len(candidates), -1)
    chosen = entities[candidates]
    scores = model.decoder.score(entities[anchor].expand_as(chosen), rel, chosen)
    order = scores.argsort(descending=True)[:k]
    labels = [
        "+".join(PATHWAY_LABELS[name] for name, made in zip(snapped, row, strict=True) if made)
        for row in made_by[order].tolist()
    ]
    return HardNegatives(candidates[order], scores[order], nearest[order], labels)
