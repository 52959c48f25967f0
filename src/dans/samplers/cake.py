"""CAKE's commonsense-aware negative sampling (Niu et al., ACL 2022), with the choices that the
paper leaves to its code written down.

Commonsense is what train says of types: the types of the heads and of the tails each relation
has (CAKE's abstract commonsense, C2). Each relation's complexity comes from train: 1-1, 1-N,
N-1 or N-N by the mean tails per head and heads per tail, 1.5 the threshold (Bordes et al.,
2013). Replacing a head, where a relation is 1-1 or 1-N (one head for its tail), the candidates
are the entities that share a type with the true head: plausible, and still false. Where it is
N-1 or N-N, entities of the head's own types may well be true heads, so the candidates are those
of the relation's head types that the true head does not have. Tails mirror this with N-1 and
N-N as the "one" side, as the authors' code has it (it treats 1-1 as "many" on the tail side).
A head without types takes the relation's head types. Of a row's negatives, as many as the
candidates number (at most all) are drawn from them with replacement, the rest from every
entity (a candidate of several candidate types is that many times as likely, so that a draw
costs O(T), not O(E)); train-true negatives are redrawn (CAKE drops and refills them). Finally each
negative is weighted by ``softmax(alpha * score)`` of the current model, CAKE's
self-adversarial weighting (its code runs with ``-adv``).

Not part of this sampler: CAKE's multi-view link prediction, which filters candidates by
commonsense at test time. Evaluation here stays the standard filtered ranking.
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

# Relation complexity, as the authors' code numbers it.
ONE_TO_ONE, ONE_TO_MANY, MANY_TO_ONE, MANY_TO_MANY = 0, 1, 2, 3
# Mean tails per head (or heads per tail) from which a side counts as "many".
MANY_THRESHOLD = 1.5


@dataclass(frozen=True)
class CAKEOptions(Options):
    prefix: ClassVar[str] = "cake_"
    renamed: ClassVar[dict[str, str]] = {"cake_temperature": "cake_alpha"}

    alpha: float = option(
        1.0,
        "sharpness alpha of the self-adversarial weights softmax(alpha * score) of the negatives",
        above=0.0,
    )


def relation_complexity(train: LongTensor, num_relations: int) -> LongTensor:
    """shape (R,): each relation's class, :data:`ONE_TO_ONE` to :data:`MANY_TO_MANY`, from the
    mean number of tails per (head, relation) and of heads per (relation, tail) in train."""
    pairs_hr = torch.unique(train[:, :2], dim=0)
    pairs_rt = torch.unique(train[:, 1:], dim=0)
    triples = torch.bincount(train[:, 1], minlength=num_relations).double()
    heads = torch.bincount(pairs_hr[:, 1], minlength=num_relations).double().clamp_min(1)
    tails = torch.bincount(pairs_rt[:, 0], minlength=num_relations).double().clamp_min(1)
    many_tails = triples / heads >= MANY_THRESHOLD
    many_heads = triples / tails >= MANY_THRESHOLD
    return many_tails.long() * ONE_TO_MANY + many_heads.long() * MANY_TO_ONE


class CAKESampler(UniformDraws):
    """Negatives of types that commonsense says are plausible and false (see the module)."""

    name = "cake"
    options_type = CAKEOptions

    @classmethod
    def from_context(cls, context: BuildContext, options: CAKEOptions) -> CAKESampler:
        return cls(
            context.num_entities,
            context.num_relations,
            context.num_negatives,
            context.train_triples,
            context.entity_types,
            context.known_triples,
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
        options: CAKEOptions = CAKEOptions(),
    ) -> None:
        # CAKE always removes train-true negatives.
        super().__init__(num_entities, num_negatives, known_triples, True, options)
        self.alpha = options.alpha
        self.typed = TypedEntities(entity_types, num_entities)
        heads, relations, tails = train_triples.unbind(1)
        # Commonsense C2: the types of each relation's heads and tails in train, shape (R, T).
        head_types, tail_types = (
            self.relation_types(relations, ends, num_relations) for ends in (heads, tails)
        )
        self.register_buffer("head_types", head_types)
        self.register_buffer("tail_types", tail_types)
        self.register_buffer("complexity", relation_complexity(train_triples, num_relations))

    def relation_types(
        self, relations: LongTensor, ends: LongTensor, num_relations: int
    ) -> BoolTensor:
        """shape (R, T): the types that the entities ``ends`` have with ``relations``, both
        shape (N,)."""
        places, kinds = self.typed.types_of(ends)
        found = torch.zeros(num_relations, self.typed.num_types, dtype=torch.bool)
        found[relations[places], kinds] = True
        return found

    def candidate_types(self, positives: LongTensor, head_replaced: bool) -> BoolTensor:
        """shape (B, T): the types whose entities are candidates, replacing the head (or the
        tail) of each positive."""
        anchor_col, commonsense = (0, self.head_types) if head_replaced else (2, self.tail_types)
        one_side = (ONE_TO_ONE, ONE_TO_MANY) if head_replaced else (MANY_TO_ONE, MANY_TO_MANY)
        relations = positives[:, 1]
        allowed = commonsense[relations]
        own = self.typed.membership(positives[:, anchor_col])
        typed = own.any(1, keepdim=True)
        same_type = torch.where(typed, own, allowed)
        other_types = allowed & ~own
        alike = torch.isin(self.complexity[relations], torch.tensor(one_side, device=own.device))
        return torch.where(alike[:, None], same_type, other_types)

    def draw(self, step: StepContext, head_replaced: BoolTensor) -> LongTensor:
        drawn = super().draw(step, head_replaced)  # uniform, where no candidate takes its place
        columns = torch.arange(head_replaced.shape[1], device=drawn.device)
        for side in (True, False):
            candidates = self.candidate_types(step.positives, side)
            # As many of a row's negatives as it has candidates come from them.
            count = (candidates * self.typed.sizes[:-1]).sum(1, keepdim=True)
            chosen = (head_replaced == side) & (columns < count)
            drawn = self.typed.draw_into(drawn, chosen, candidates, step.generator)
        return drawn

    def weigh(self, step: StepContext, negatives: Negatives) -> Tensor:
        return adversarial_weights(step, negatives, self.alpha)
