"""How far apart DANS's fakes for one (positive, side) are, against fakes for different ones.

Each pathway makes its fakes for a positive from one conditioning vector plus Gaussian noise of
std ``--dans-noise-sigma``; this measures how much that noise spreads them, in the trained
generator of a run (its best-validation checkpoint, batch norm on its running statistics).

    python benchmarks/fake_spread.py RUN --out benchmarks/results/recipes/fake_spread.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import dans
from dans.samplers.base import StepContext
from dans.samplers.dans import DANSSampler


def spread(
    run: dans.Run, sampler: DANSSampler, positives: int, fakes: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per pathway of the run's ``sampler``: the mean pairwise distance of ``fakes`` fakes made
    from one conditioning row (shape (P, F, d)), and of the mean fakes of ``positives`` random
    train triples; and the mean entity norm."""
    model = run.model
    model.eval()
    sampler.eval()
    generator = torch.Generator().manual_seed(seed)
    result = {}
    with torch.no_grad():
        entities, relations = model()
        chosen = torch.randperm(len(run.kg.train), generator=generator)[:positives]
        step = StepContext(run.kg.train[chosen], entities, relations, model.decoder, generator)
        conditioning = sampler.conditions(step)
        # Every fake replaces its positive's tail: all of a positive's fakes share one row.
        tails = torch.zeros(positives, fakes, dtype=torch.bool)
        made_by = sampler.generate(conditioning, dict.fromkeys(conditioning, tails), generator)
        for name, made in made_by.items():
            within = torch.cdist(made, made).sum((1, 2)) / (fakes * (fakes - 1))
            centres = made.mean(1)
            across = torch.cdist(centres, centres).sum() / (positives * (positives - 1))
            result[name] = {
                "within_row_distance": within.mean().item(),
                "across_rows_distance": across.item(),
                "entity_norm": entities.norm(dim=1).mean().item(),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="a run directory trained with --sampler dans")
    parser.add_argument("--positives", type=int, default=200)
    parser.add_argument("--fakes", type=int, default=5, help="fakes per row (the paper's 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = dans.load_run(args.run)
    if not isinstance(run.sampler, DANSSampler):
        parser.error(
            f"{args.run} was trained with --sampler {run.config.training.sampler}, not dans"
        )
    result = spread(run, run.sampler, args.positives, args.fakes, args.seed)
    for name, values in result.items():
        print(
            f"{name} pathway: {args.fakes} fakes of one row are {values['within_row_distance']:.4f}"
            f" apart, rows {values['across_rows_distance']:.4f} apart (entity norm "
            f"{values['entity_norm']:.2f})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": str(args.run), **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
