"""Encoders produce the entity embeddings that decoders and samplers work with."""

from __future__ import annotations

from typing import ClassVar

from torch import LongTensor, Tensor, nn

from dans.errors import ConfigError
from dans.models.rgcn import RelationalGraph, RGCNLayer
from dans.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


class Encoder(nn.Module):
    """Maps the whole graph to entity embeddings: ``forward() -> shape (E, d)``."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ENCODERS.register(cls)

    def forward(self) -> Tensor:
        raise NotImplementedError


class LookupEncoder(Encoder):
    """A plain embedding table: each entity has a free vector."""

    name = "lookup"

    def __init__(self, num_entities: int, dim: int) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(num_entities, dim)
        nn.init.xavier_uniform_(self.embeddings.weight)

    def forward(self) -> Tensor:
        return self.embeddings.weight


class RGCNEncoder(Encoder):
    """Learned input embeddings refined by ``layers`` RGCN layers over the training graph.

    ReLU and dropout follow every layer but the last, whose output is the entity embedding (as in
    the RGCN link-prediction reference the paper builds on), so decoders see signed vectors.
    """

    name = "rgcn"

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        train_triples: LongTensor,
        layers: int = 2,
        bases: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"--layers must be at least 1, got {layers}")
        if bases < 1:
            raise ConfigError(f"--bases must be at least 1, got {bases}")
        self.embeddings = nn.Embedding(num_entities, dim)
        nn.init.xavier_uniform_(self.embeddings.weight)
        self.graph = RelationalGraph(train_triples, num_entities, num_relations)
        self.layers = nn.ModuleList(
            RGCNLayer(dim, dim, self.graph.num_edge_types, bases) for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self) -> Tensor:
        x = self.embeddings.weight
        for i, layer in enumerate(self.layers):
            x = layer(x, self.graph)
            if i < len(self.layers) - 1:
                x = self.dropout(x.relu())
        return x
