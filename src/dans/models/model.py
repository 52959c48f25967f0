"""A knowledge-graph embedding model: an encoder and a decoder, nothing more."""

from __future__ import annotations

import torch
from torch import BoolTensor, LongTensor, Tensor, nn

from dans.models.decoders import BilinearDecoder, Decoder
from dans.models.encoders import Encoder
from dans.models.gather import gather_rows


class KGModel(nn.Module):
    """Encoder + decoder. It neither samples, nor computes a loss, nor evaluates itself."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, message_triples: LongTensor | None = None) -> tuple[Tensor, Tensor]:
        """Entity embeddings, shape (E, d), and relation representations, shape (R, d_r).

        ``message_triples``: shape (M, 3), the graph the encoder passes messages over in this
        pass instead of its own (see :class:`~dans.models.encoders.Encoder`).
        """
        return self.encoder(message_triples), self.decoder.relations()

    def inference(self) -> tuple[Tensor, Tensor]:
        """:meth:`forward` as evaluation sees it, whatever the mode the model is in: without
        dropout and without gradient; the mode is left as it was."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                entities, relations = self()
        finally:
            self.train(was_training)
        # A decoder may hand back its relation parameters as they are: detached here.
        return entities.detach(), relations.detach()

    def score_hrt(self, triples: LongTensor) -> Tensor:
        """Logits of triples as evaluation sees them (no dropout, no gradient): shape (B, 3)
        ids -> (B,)."""
        entities, relations = self.inference()
        return score_triples(self.decoder, entities, relations, triples.to(entities.device))


def score_triples(
    decoder: Decoder, entities: Tensor, relations: Tensor, triples: LongTensor
) -> Tensor:
    """Logits of id triples, shape (B, 3) -> (B,), from entities (E, d) and relations (R, d_r)."""
    return decoder.score(*_rows(entities, relations, triples))


def score_corrupted(
    decoder: Decoder,
    entities: Tensor,
    relations: Tensor,
    positives: LongTensor,
    head_replaced: BoolTensor,
    replacing: Tensor,
) -> Tensor:
    """Logits of positives (B, 3) with the head (where ``head_replaced``, shape (B, K)) or the
    tail replaced by the vectors ``replacing``, shape (B, K, d): shape (B, K)."""
    return decoder.score_corrupted(*_rows(entities, relations, positives), head_replaced, replacing)


def score_corrupted_ids(
    decoder: BilinearDecoder,
    entities: Tensor,
    relations: Tensor,
    positives: LongTensor,
    head_replaced: BoolTensor,
    ids: LongTensor,
) -> Tensor:
    """:func:`score_corrupted` with the replacing entities given as ids, shape (B, K), scored
    against the whole table: shape (B, K)."""
    return decoder.score_corrupted_ids(
        *_rows(entities, relations, positives), head_replaced, ids, entities
    )


def score_corrupted_shared(
    decoder: BilinearDecoder,
    entities: Tensor,
    relations: Tensor,
    positives: LongTensor,
    head_replaced: BoolTensor,
    drawn: Tensor,
    shared_by: int,
) -> Tensor:
    """:func:`score_corrupted` where each ``shared_by`` consecutive positives share one draw
    of K replacing vectors, ``drawn``: shape (ceil(B / shared_by), K, d) -> (B, K)."""
    return decoder.score_corrupted_shared(
        *_rows(entities, relations, positives), head_replaced, drawn, shared_by
    )


def _rows(
    entities: Tensor, relations: Tensor, triples: LongTensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The head, relation and tail vectors of id triples (B, 3): (B, d), (B, d_r), (B, d)."""
    return (
        gather_rows(entities, triples[:, 0]),
        gather_rows(relations, triples[:, 1]),
        gather_rows(entities, triples[:, 2]),
    )
