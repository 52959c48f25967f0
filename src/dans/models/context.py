"""What a component is built from besides its own options."""

from __future__ import annotations

from dataclasses import dataclass

from torch import LongTensor, Tensor

from dans.data.graph import KnowledgeGraph, KnownTriples
from dans.data.types import EntityTypes


@dataclass(frozen=True)
class BuildContext:
    """The graph a run trains on and the settings its encoder, decoder and sampler share.

    Each component's ``from_context(context, options)`` reads the fields it needs here, and its
    own settings from ``options``: nothing is matched to a constructor by argument name.
    """

    graph: KnowledgeGraph
    dim: int  # the embedding dimension d
    num_negatives: int  # negatives per positive, N_s
    filter_negatives: bool  # whether a sampler drops known-true negatives
    seed: int

    @property
    def num_entities(self) -> int:
        return self.graph.num_entities

    @property
    def num_relations(self) -> int:
        return self.graph.num_relations

    @property
    def train_triples(self) -> LongTensor:
        """shape (N, 3)."""
        return self.graph.train

    @property
    def known_triples(self) -> KnownTriples:
        # Train alone: valid and test triples must not steer what a run learns from.
        return self.graph.train_known_triples

    @property
    def entity_counts(self) -> Tensor:
        """shape (E,): each entity's occurrences in train."""
        return self.graph.train_entity_counts

    @property
    def entity_types(self) -> EntityTypes:
        """Read, or derived with k-means, on first use: only samplers that ask pay for them."""
        return self.graph.entity_types
