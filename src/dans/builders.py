"""Configuration to objects, in one place."""

from __future__ import annotations

from typing import Any

from dans.config import TrainConfig
from dans.data.datasets import load_dataset
from dans.data.graph import KnowledgeGraph
from dans.models.decoders import DECODERS
from dans.models.encoders import ENCODERS
from dans.models.model import KGModel
from dans.samplers.base import SAMPLERS, NegativeSampler


def load_graph(config: TrainConfig) -> KnowledgeGraph:
    if config.data_dir:
        return load_dataset(data_dir=config.data_dir)
    return load_dataset(config.dataset)


def _available(
    config: TrainConfig, kg: KnowledgeGraph, component: str = "", **extra: Any
) -> dict[str, Any]:
    """Every value a component's constructor may ask for, by argument name.

    Config keys that belong to one sampler are prefixed by its name (``dans_mode`` for
    ``dans``); that sampler's constructor takes them bare (``mode``), and no other sees them
    bare, so two samplers may use the same argument name.
    """
    values = config.to_dict()
    prefix = component.replace("-", "_") + "_"
    bare = {
        key.removeprefix(prefix): value
        for key, value in values.items()
        if component and key.startswith(prefix)
    }
    clashes = bare.keys() & values.keys()
    assert not clashes, f"prefixed config keys shadow others: {clashes}"
    return {
        **values,
        **bare,
        "num_entities": kg.num_entities,
        "num_relations": kg.num_relations,
        "num_negatives": config.negatives,
        "train_triples": kg.train,
        **extra,
    }


def build_model(config: TrainConfig, kg: KnowledgeGraph) -> KGModel:
    available = _available(config, kg)
    return KGModel(
        ENCODERS.build(config.encoder, available), DECODERS.build(config.decoder, available)
    )


def build_sampler(name: str, config: TrainConfig, kg: KnowledgeGraph) -> NegativeSampler:
    available = _available(
        config,
        kg,
        name,
        # Training may only know train: valid and test triples must not steer the negatives.
        known_triples=kg.train_known_triples,
        entity_counts=kg.train_entity_counts,
    )
    return SAMPLERS.build(name, available)


def check_names(config: TrainConfig) -> None:
    """Fail early, before any data is read, on an unknown encoder, decoder or sampler."""
    ENCODERS.get(config.encoder)
    DECODERS.get(config.decoder)
    SAMPLERS.get(config.sampler)
