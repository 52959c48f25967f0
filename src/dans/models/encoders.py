"""Encoders produce the entity embeddings that decoders and samplers work with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import LongTensor, Tensor, nn

from dans.models.context import BuildContext
from dans.models.rgcn import RelationalGraph, RGCNLayer
from dans.optim import mark_row_sparse
from dans.options import Options, option
from dans.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


class Encoder(nn.Module):
    """Maps the whole graph to entity embeddings: ``forward(message_triples=None) -> (E, d)``.

    ``message_triples`` (shape (M, 3)), when given, replaces the graph an encoder that passes
    messages would use in this forward pass; encoders that pass none ignore it.
    """

    name: ClassVar[str] = ""
    # The encoder's own settings (see :class:`~dans.samplers.base.NegativeSampler`), or None.
    options_type: ClassVar[type[Options] | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ENCODERS.register(cls)

    @classmethod
    def from_context(cls, context: BuildContext, options: Options | None) -> Encoder:
        """The encoder for ``context``'s graph, with ``options`` (of :attr:`options_type`)."""
        raise NotImplementedError

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class LookupOptions(Options):
    sparse_embeddings: bool = option(
        False,
        "lookup encoder: row-sparse gradients for the entity table and a lazy Adam that updates "
        "the rows a step touches (and their moments) alone, so that a step costs what its batch "
        "touches, not the size of the graph; needs --l2-scope batch",
    )


class LookupEncoder(Encoder):
    """A plain embedding table: each entity has a free vector.

    With ``sparse_embeddings`` the table's gradient holds the rows a step gathered alone (see
    :func:`~dans.models.gather.gather_rows`), for an optimizer that updates those rows alone.
    """

    name = "lookup"
    options_type = LookupOptions

    def __init__(
        self, num_entities: int, dim: int, options: LookupOptions = LookupOptions()
    ) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(num_entities, dim)
        nn.init.xavier_uniform_(self.embeddings.weight)
        if options.sparse_embeddings:
            mark_row_sparse(self.embeddings.weight)

    @classmethod
    def from_context(cls, context: BuildContext, options: LookupOptions) -> LookupEncoder:
        return cls(context.num_entities, context.dim, options)

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        return self.embeddings.weight


@dataclass(frozen=True)
class RGCNOptions(Options):
    layers: int = option(2, "RGCN layers", minimum=1)
    bases: int = option(4, "RGCN basis matrices", minimum=1)
    blocks: int = option(
        0,
        "RGCN: make each relation's matrix block-diagonal with this many blocks, instead of a "
        "combination of --bases matrices; it must divide --dim (0: bases)",
        minimum=0,
    )
    dropout: float = option(0.2, "dropout between RGCN layers", minimum=0.0, below=1.0)
    edge_dropout: float = option(
        0.4,
        "RGCN: share of training triples left out of each step's message passing",
        minimum=0.0,
        below=1.0,
    )


def relu_dropout(x: Tensor, p: float) -> Tensor:
    """ReLU, then each entry zeroed with probability ``p`` and the others scaled by
    ``1 / (1 - p)``, as ``nn.Dropout`` does; shape kept.

    The mask compares uniform draws with ``p`` rather than drawing Bernoulli variables: on the
    CPU that takes under half the time for a large graph's (E, d) activations, where
    ``bernoulli_`` took an eighth of a WN18RR training step.
    """
    x = x.relu()
    if p == 0.0:
        return x
    return x.mul(torch.rand_like(x) >= p).mul_(1.0 / (1.0 - p))


class RGCNEncoder(Encoder):
    """Learned input embeddings refined by ``options.layers`` RGCN layers over the training graph.

    ReLU and dropout follow every layer but the last, whose output is the entity embedding (as in
    the RGCN link-prediction reference the paper builds on), so decoders see signed vectors.
    In training, ``options.edge_dropout`` leaves each training triple (both its directions) out
    of message passing with that probability, redrawn at every forward pass, so the encoder
    cannot simply read the edge it is being trained to predict; evaluation always uses the whole
    graph.
    Given ``message_triples``, messages pass over those alone (no edge dropout): entities they
    do not touch keep only their self-connection.
    """

    name = "rgcn"
    options_type = RGCNOptions

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        train_triples: LongTensor,
        options: RGCNOptions = RGCNOptions(),
    ) -> None:
        """``train_triples``: shape (N, 3), the graph messages pass over."""
        super().__init__()
        self.embeddings = nn.Embedding(num_entities, dim)
        nn.init.xavier_uniform_(self.embeddings.weight)
        self.graph = RelationalGraph(
            train_triples, num_entities, num_relations, subsets=options.edge_dropout > 0
        )
        self.num_relations = num_relations
        self.num_triples = len(train_triples)
        self.edge_dropout = options.edge_dropout
        self.layers = nn.ModuleList(
            RGCNLayer(dim, dim, self.graph.num_edge_types, options.bases, options.blocks)
            for _ in range(options.layers)
        )
        self.dropout = options.dropout

    @classmethod
    def from_context(cls, context: BuildContext, options: RGCNOptions) -> RGCNEncoder:
        return cls(
            context.num_entities, context.num_relations, context.dim, context.train_triples, options
        )

    def message_graph(self, message_triples: LongTensor | None = None) -> RelationalGraph:
        """The graph messages travel on in this forward pass."""
        if message_triples is None:
            if not self.training or self.edge_dropout == 0.0:
                return self.graph
            keep = torch.rand(self.num_triples, device=self.embeddings.weight.device)
            return self.graph.subset(keep >= self.edge_dropout)
        return RelationalGraph(message_triples, len(self.embeddings.weight), self.num_relations)

    def forward(self, message_triples: LongTensor | None = None) -> Tensor:
        x = self.embeddings.weight
        graph = self.message_graph(message_triples)
        for i, layer in enumerate(self.layers):
            x = layer(x, graph)
            if i < len(self.layers) - 1:
                x = relu_dropout(x, self.dropout if self.training else 0.0)
        return x
