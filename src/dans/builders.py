"""Configuration to objects, in one place."""

from __future__ import annotations

import inspect
from typing import Any

from dans.config import TrainConfig
from dans.data.datasets import load_dataset
from dans.data.graph import KnowledgeGraph
from dans.models.decoders import DECODERS
from dans.models.encoders import ENCODERS
from dans.models.model import KGModel
from dans.samplers.base import SAMPLERS, NegativeSampler


def load_graph(config: TrainConfig) -> KnowledgeGraph:
    if config.data.data_dir:
        return load_dataset(data_dir=config.data.data_dir)
    return load_dataset(config.data.dataset)


def _available(config: TrainConfig, kg: KnowledgeGraph, **extra: Any) -> dict[str, Any]:
    """Every value a component's constructor may ask for, by argument name: the sections'
    settings, the graph's sizes and tensors, and ``extra``."""
    sections = (config.data, config.model, config.training, config.evaluation, config.runtime)
    return {
        **{key: value for section in sections for key, value in section.values().items()},
        "num_entities": kg.num_entities,
        "num_relations": kg.num_relations,
        "num_negatives": config.training.negatives,
        "train_triples": kg.train,
        **extra,
    }


def build_model(config: TrainConfig, kg: KnowledgeGraph) -> KGModel:
    available = _available(config, kg)
    return KGModel(
        ENCODERS.build(config.model.encoder, available),
        DECODERS.build(config.model.decoder, available),
    )


def build_sampler(name: str, config: TrainConfig, kg: KnowledgeGraph) -> NegativeSampler:
    # Types are read, or derived with k-means, only for a sampler that asks for them.
    asks_types = "entity_types" in inspect.signature(SAMPLERS.get(name).__init__).parameters
    available = _available(
        config,
        kg,
        options=config.sampler_options(name),
        # Training may only know train: valid and test triples must not steer the negatives.
        known_triples=kg.train_known_triples,
        entity_counts=kg.train_entity_counts,
        **({"entity_types": kg.entity_types} if asks_types else {}),
    )
    return SAMPLERS.build(name, available)


def check_names(config: TrainConfig) -> None:
    """Fail early, before any data is read, on an unknown encoder, decoder or sampler."""
    ENCODERS.get(config.model.encoder)
    DECODERS.get(config.model.decoder)
    SAMPLERS.get(config.training.sampler)
