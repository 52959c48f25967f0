"""``dans visualize``: a t-SNE picture of one relation's positive tails beside the negative tails
DANS's pathways and uniform sampling make for the same heads (the paper's Fig. 3)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from dans.experiments.hardest import PATHWAY_LABELS
from dans.experiments.plots import scatter_chart
from dans.files import write_output
from dans.rundir import Run
from dans.samplers.base import StepContext
from dans.samplers.dans import DANSSampler
from dans.samplers.snap import nearest_entities

CHART_FILE, POINTS_FILE = "tsne.png", "tsne.csv"
POINT_COLUMNS = ("source", "head", "tail", "nearest_entity", "x", "y")


@dataclass
class Point:
    """One tail to project: where it comes from (``positive``, ``G_E``, ``G_R``, ``uniform``),
    the head it stands with (empty for positives, drawn once per distinct tail), the entity it is
    (empty for fakes), the entity nearest it, and its vector (d,)."""

    source: str
    head: str
    tail: str
    nearest: str
    vector: torch.Tensor


@torch.no_grad()
def negative_tails(
    run: Run, sampler: DANSSampler, relation: int, max_positives: int, seed: int
) -> list[Point]:
    """Points to project: each distinct positive tail of ``relation`` in train, and for each
    (head, tail) pair (a seeded random ``max_positives`` of them at most) one fake tail per DANS
    pathway and one uniformly drawn entity; ``sampler`` is the run's."""
    run.model.eval()
    sampler.eval()
    entities, relations = run.model.inference()
    device = entities.device
    names = run.kg.entity_names
    positives = run.kg.train[run.kg.train[:, 1] == relation]
    draws = torch.Generator().manual_seed(seed)
    if len(positives) > max_positives:
        positives = positives[torch.randperm(len(positives), generator=draws)[:max_positives]]
    positives = positives.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    step = StepContext(positives, entities, relations, run.model.decoder, generator)
    conditioning = sampler.conditions(step)
    tail_side = {
        name: torch.zeros(len(positives), 1, dtype=torch.bool, device=device)
        for name in sampler.pathways
    }
    fakes = sampler.generate(conditioning, tail_side, generator)
    uniform = torch.randint(len(entities), (len(positives),), generator=draws).to(device)
    heads = [names[h] for h in positives[:, 0].tolist()]
    points = []
    for name, fake in fakes.items():
        vectors = fake[:, 0]
        nearest = nearest_entities(vectors, entities).tolist()
        points += [
            Point(PATHWAY_LABELS[name], h, "", names[n], v)
            for h, v, n in zip(heads, vectors, nearest, strict=True)
        ]
    points += [
        Point("uniform", h, names[t], names[t], entities[t])
        for h, t in zip(heads, uniform.tolist(), strict=True)
    ]
    # Last, so that the chart draws the positives over the negatives.
    points += [
        Point("positive", "", names[t], names[t], entities[t])
        for t in torch.unique(positives[:, 2]).tolist()
    ]
    return points


def project(vectors: torch.Tensor, seed: int) -> torch.Tensor:
    """t-SNE of ``vectors`` (N, d) to shape (N, 2), seeded."""
    perplexity = max(1.0, min(30.0, (len(vectors) - 1) / 3))
    # scikit-learn loads here rather than with the module: only this command needs it.
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return torch.from_numpy(tsne.fit_transform(vectors.detach().double().cpu().numpy()))


def write_visualization(
    points: list[Point], coordinates: torch.Tensor, title: str, out: Path
) -> None:
    """``out/tsne.png`` coloured by source, and ``out/tsne.csv`` with each point's coordinates."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(POINT_COLUMNS)
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for point, (x, y) in zip(points, coordinates.tolist(), strict=True):
        writer.writerow([point.source, point.head, point.tail, point.nearest, x, y])
        xs, ys = groups.setdefault(point.source, ([], []))
        xs.append(x)
        ys.append(y)
    write_output(out / POINTS_FILE, buffer.getvalue().encode())
    scatter_chart(groups, title, out / CHART_FILE)
