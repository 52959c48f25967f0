"""A sampler of your own: subclass NegativeSampler, give it a name, and draw entity ids. This
one draws rare entities more often than common ones (in proportion to 1 / (count + 1)).

    python examples/custom_sampler.py [--epochs 50]
"""

from __future__ import annotations

import argparse

import torch
from torch import BoolTensor, LongTensor, Tensor

import dans
from dans.models import BuildContext
from dans.samplers import NegativeSampler, StepContext


class RareEntitySampler(NegativeSampler):
    """Entities drawn in proportion to 1 / (train count + 1)."""

    name = "rare"  # registered under this name: `sampler="rare"`, `--sampler rare`

    def __init__(self, num_entities: int, num_negatives: int, entity_counts: Tensor) -> None:
        super().__init__(num_entities, num_negatives)
        self.register_buffer("weights", 1.0 / (entity_counts.double() + 1.0))

    @classmethod
    def from_context(cls, context: BuildContext, options: None) -> RareEntitySampler:
        # A run builds its sampler from what the graph and the settings give (the context) and
        # the sampler's own options (it has none).
        return cls(context.num_entities, context.num_negatives, context.entity_counts)

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        """Entity ids for the replaced slots, shape (B, K)."""
        drawn = torch.multinomial(
            self.weights, head_replaced.numel(), replacement=True, generator=step.generator
        )
        return drawn.view(head_replaced.shape)


def main(epochs: int) -> None:
    for sampler in ("uniform", "rare"):
        config = dans.TrainConfig(sampler=sampler, encoder="lookup", epochs=epochs, device="cpu")
        run = dans.train(config, progress=False)
        assert run.metrics is not None
        print(f"{sampler}: test MRR {run.metrics.test.mrr:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    main(parser.parse_args().epochs)
