"""SMiLE's schema-aware negatives (Peng et al., EMNLP Findings 2022), as a negative sampler, with
the choices that moving it into a sampler takes written down.

SMiLE is a whole framework: a transformer encodes each entity's neighbourhood, and a contrastive
loss pulls an entity towards its *schema instances* (its triples whose typed form, head type,
relation, tail type, is in the schema graph) and away from other entities' instances, of the
same schema (intra-schema) and of other schemas of the same type (inter-schema). What carries
over to negative sampling is the schema graph and its two kinds of negative:

* The schema graph: every (head type, relation, tail type) seen in train at least ``min_count``
  times (SMiLE's frequency filter, ``topNfilters``).
* For a positive, the schema context of its kept entity: replacing the tail of (h, r, t), the
  tail types that the schema allows after any type of h with r (the head's types, if it has
  none); heads mirror this. Entities of an allowed type are the intra-schema negatives: they fit
  the schema, so only the model's finer knowledge can reject them. The others are the
  inter-schema negatives, which break it.
* ``hard_share`` of a positive's negatives are intra-schema, the rest inter-schema (untyped
  entities among them), each drawn a type at a time (an entity of several types of a kind is
  that many times as likely); where a kind has no entity, its share is drawn from every entity.
* SMiLE's contrastive loss weighs each negative by ``exp(score / tau)`` in its softmax, so its
  gradient on the negatives is a softmax over their scores. Here that is the ``alpha``
  option (1 / tau): each negative is weighted by ``softmax(alpha * score)``, as
  self-adversarial weighting does; 0 turns it off.

Not reproduced: SMiLE's neighbourhood encoder and its pretraining; the sampler serves whatever
model trains with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import BoolTensor, LongTensor, Tensor

from dans.data.graph import KnownTriples
from dans.data.types import EntityTypes
from dans.models.context import BuildContext
from dans.options import Options, option
from dans.samplers.base import Negatives, StepContext
from dans.samplers.simple import UniformDraws, adversarial_weights
from dans.samplers.typed import TypedEntities


@dataclass(frozen=True)
class SMiLEOptions(Options):
    prefix: ClassVar[str] = "smile_"
    renamed: ClassVar[dict[str, str]] = {"smile_temperature": "smile_alpha"}

    hard_share: float = option(
        0.5,
        "share of the negatives whose types fit the schema (intra-schema); the rest break it",
        minimum=0.0,
        maximum=1.0,
    )
    min_count: int = option(
        1, "train triples a (type, relation, type) needs to enter the schema graph", minimum=1
    )
    alpha: float = option(
        1.0,
        "sharpness alpha (1 / tau) of the contrastive weights softmax(alpha * score) of the "
        "negatives (0: none)",
        minimum=0.0,
    )


def schema_graph(
    train: LongTensor, typed: TypedEntities, num_relations: int, min_count: int
) -> BoolTensor:
    """shape (R, T, T): whether (head type, relation, tail type) is seen ``min_count`` times in
    train, counting each triple once for each pair of its head's and its tail's types."""
    heads, relations, tails = train.unbind(1)
    triples, head_kinds = typed.types_of(heads)
    # Each (triple, head type) once for each type of the triple's tail.
    tail_counts = typed.type_counts[tails[triples]]
    pair = torch.repeat_interleave(torch.arange(len(triples)), tail_counts)
    triples, head_kinds = triples[pair], head_kinds[pair]
    rank = torch.arange(len(pair)) - (torch.cumsum(tail_counts, 0) - tail_counts)[pair]
    tail_kinds = typed.entity_types[typed.type_starts[tails[triples]] + rank]
    kinds = typed.num_types
    codes = (relations[triples] * kinds + head_kinds) * kinds + tail_kinds
    seen, counts = torch.unique(codes, return_counts=True)
    schema = torch.zeros(num_relations * kinds * kinds, dtype=torch.bool)
    schema[seen[counts >= min_count]] = True
    return schema.view(num_relations, kinds, kinds)


class SMiLESampler(UniformDraws):
    """Intra- and inter-schema negatives by the schema graph of train (see the module)."""

    name = "smile"
    options_type = SMiLEOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: SMiLEOptions) -> SMiLESampler:
        return cls(
            context.num_entities,
            context.num_relations,
            context.num_negatives,
            context.train_triples,
            context.entity_types,
            context.known_triples,
            context.filter_negatives,
            options,
        )

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        num_negatives: int,
        train_triples: LongTensor,
        entity_types: EntityTypes,
        known_triples: KnownTriples | None = None,
        filter_negatives: bool = False,
        options: SMiLEOptions = SMiLEOptions(),
    ) -> None:
        super().__init__(num_entities, num_negatives, known_triples, filter_negatives, options)
        self.hard_share, self.alpha = options.hard_share, options.alpha
        self.typed = TypedEntities(entity_types, num_entities)
        schema = schema_graph(train_triples, self.typed, num_relations, options.min_count)
        self.register_buffer("schema", schema)

    def allowed_types(self, positives: LongTensor, head_replaced: bool) -> BoolTensor:
        """shape (B, T): the types the schema allows in the replaced slot of each positive,
        after (or before) any type of its kept entity; every type the relation allows there
        for a kept entity without types. Built from the (positive, kept type) pairs, not a
        (B, T, T) block: NELL-995 has 267 types."""
        relations, kept = positives[:, 1], positives[:, 2 if head_replaced else 0]
        row, kind = self.typed.types_of(kept)
        if head_replaced:
            slots, anywhere = self.schema[relations[row], :, kind], self.schema.any(2)
        else:
            slots, anywhere = self.schema[relations[row], kind, :], self.schema.any(1)
        shape = (len(positives), self.typed.num_types)
        allowed = torch.zeros(shape, device=kind.device).index_add_(0, row, slots.float())
        typed = self.typed.type_counts[kept] > 0
        return torch.where(typed[:, None], allowed > 0, anywhere[relations])

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        drawn = super().draw(step, head_replaced)  # uniform, where a kind has no entity
        width = head_replaced.shape[1]
        hard = torch.arange(width, device=drawn.device) < round(self.hard_share * width)
        for side in (True, False):
            fits, replaced = self.allowed_types(step.positives, side), head_replaced == side
            drawn = self.typed.draw_into(drawn, replaced & hard, fits, step.generator)
            # Untyped entities fit no schema: they are inter-schema negatives.
            drawn = self.typed.draw_into(drawn, replaced & ~hard, ~fits, step.generator, True)
        return drawn

    def weigh(self, step: StepContext, negatives: Negatives) -> Tensor | None:
        if not self.alpha:
            return None
        return adversarial_weights(step, negatives, self.alpha)
