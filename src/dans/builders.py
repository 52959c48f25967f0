"""Configuration to objects, in one place."""

from __future__ import annotations

from dans.config import TrainConfig
from dans.data.datasets import load_dataset
from dans.data.graph import KnowledgeGraph
from dans.models.context import BuildContext
from dans.models.decoders import DECODERS
from dans.models.encoders import ENCODERS
from dans.models.model import KGModel
from dans.samplers.base import SAMPLERS, NegativeSampler


def load_graph(config: TrainConfig) -> KnowledgeGraph:
    if config.data.data_dir:
        return load_dataset(data_dir=config.data.data_dir)
    return load_dataset(config.data.dataset)


def build_context(config: TrainConfig, kg: KnowledgeGraph) -> BuildContext:
    """What ``config``'s components share, on graph ``kg``."""
    return BuildContext(
        graph=kg,
        dim=config.model.dim,
        num_negatives=config.training.negatives,
        filter_negatives=config.training.filter_negatives,
        seed=config.runtime.seed,
    )


def build_model(config: TrainConfig, kg: KnowledgeGraph) -> KGModel:
    context = build_context(config, kg)
    encoder, decoder = config.model.encoder, config.model.decoder
    return KGModel(
        ENCODERS.get(encoder).from_context(context, config.options_of("encoder", encoder)),
        DECODERS.get(decoder).from_context(context, config.options_of("decoder", decoder)),
    )


def build_sampler(name: str, config: TrainConfig, kg: KnowledgeGraph) -> NegativeSampler:
    return SAMPLERS.get(name).from_context(build_context(config, kg), config.sampler_options(name))


def check_names(config: TrainConfig) -> None:
    """Fail early, before any data is read, on an unknown encoder, decoder or sampler."""
    ENCODERS.get(config.model.encoder)
    DECODERS.get(config.model.decoder)
    SAMPLERS.get(config.training.sampler)
