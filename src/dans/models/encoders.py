"""Encoders produce the entity embeddings that decoders and samplers work with."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import LongTensor, Tensor, nn

from dans.errors import ConfigError
from dans.models.rgcn import RelationalGraph, RGCNLayer
from dans.optim import mark_row_sparse
from dans.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


class Encoder(nn.Module):
    """Maps the whole graph to entity embeddings: ``forward(message_triples=None) -> (E, d)``.

    ``message_triples`` (shape (M, 3)), when given, replaces the graph an encoder that passes
    messages would use in this forward pass; encoders that pass none ignore it.
    """

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ENCODERS.register(cls)

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        raise NotImplementedError


class LookupEncoder(Encoder):
    """A plain embedding table: each entity has a free vector.

    ``sparse_embeddings``: the table is gathered by an embedding lookup whose gradient holds
    the rows gathered alone (see :func:`~dans.models.gather.gather_rows`), for an optimizer
    that updates those rows alone.
    """

    name = "lookup"

    def __init__(self, num_entities: int, dim: int, sparse_embeddings: bool = False) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(num_entities, dim, sparse=sparse_embeddings)
        nn.init.xavier_uniform_(self.embeddings.weight)
        if sparse_embeddings:
            mark_row_sparse(self.embeddings.weight)

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        return self.embeddings.weight


class RGCNEncoder(Encoder):
    """Learned input embeddings refined by ``layers`` RGCN layers over the training graph.

    ReLU and dropout follow every layer but the last, whose output is the entity embedding (as in
    the RGCN link-prediction reference the paper builds on), so decoders see signed vectors.
    In training, ``edge_dropout`` leaves each training triple (both its directions) out of message
    passing with that probability, redrawn at every forward pass, so the encoder cannot simply
    read the edge it is being trained to predict; evaluation always uses the whole graph.
    Given ``message_triples``, messages pass over those alone (no edge dropout): entities they
    do not touch keep only their self-connection.
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
        blocks: int = 0,
        dropout: float = 0.2,
        edge_dropout: float = 0.4,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"--layers must be at least 1, got {layers}")
        if bases < 1:
            raise ConfigError(f"--bases must be at least 1, got {bases}")
        if not 0.0 <= edge_dropout < 1.0:
            raise ConfigError(f"--edge-dropout must be in [0, 1), got {edge_dropout}")
        self.embeddings = nn.Embedding(num_entities, dim)
        nn.init.xavier_uniform_(self.embeddings.weight)
        self.graph = RelationalGraph(train_triples, num_entities, num_relations)
        self.register_buffer("train_triples", train_triples.clone(), persistent=False)
        self.num_relations = num_relations
        self.edge_dropout = edge_dropout
        self.layers = nn.ModuleList(
            RGCNLayer(dim, dim, self.graph.num_edge_types, bases, blocks) for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def message_graph(self, message_triples: LongTensor | None = None) -> RelationalGraph:
        """The graph messages travel on in this forward pass."""
        if message_triples is None:
            if not self.training or self.edge_dropout == 0.0:
                return self.graph
            keep = torch.rand(len(self.train_triples), device=self.train_triples.device)
            message_triples = self.train_triples[keep >= self.edge_dropout]
        return RelationalGraph(message_triples, len(self.embeddings.weight), self.num_relations)

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        x = self.embeddings.weight
        graph = self.message_graph(message_triples)
        for i, layer in enumerate(self.layers):
            x = layer(x, graph)
            if i < len(self.layers) - 1:
                x = self.dropout(x.relu())
        return x
