"""Entities by type, for the samplers that draw negatives of chosen types (CAKE, SMiLE): a draw
is a type, in proportion to its size among the allowed ones, then one of its entities, so that
it costs O(B * T) rather than O(B * E)."""

from __future__ import annotations

import torch
from torch import BoolTensor, LongTensor, Tensor, nn

from dans.data.types import EntityTypes


class TypedEntities(nn.Module):
    """The entities of each type, and of one more, "untyped", for the entities without any: the
    members of type t are ``members[offsets[t] : offsets[t] + sizes[t]]``; and the types of
    each entity, ``entity_types[type_starts[e] : type_starts[e] + type_counts[e]]``. Both are
    built from the (entity, type) pairs, never an (E, T) matrix: a million entities of 700
    derived types would make it 700 MB, and a float copy of it per train triple tens of GB.
    They follow from the types, so checkpoints leave them out (and ignore them where those of
    earlier versions hold them)."""

    def __init__(self, types: EntityTypes, num_entities: int) -> None:
        super().__init__()
        self.num_types = len(types.names)
        pairs = torch.unique(types.pairs, dim=0)  # sorted by entity, then type
        entities, kinds = pairs.unbind(1)
        type_counts = torch.bincount(entities, minlength=num_entities)
        untyped = (type_counts == 0).nonzero().squeeze(1)
        entities = torch.cat([entities, untyped])
        kinds = torch.cat([kinds, kinds.new_full(untyped.shape, self.num_types)])
        order = torch.argsort(kinds, stable=True)
        sizes = torch.bincount(kinds, minlength=self.num_types + 1)
        self.register_buffer("members", entities[order], persistent=False)
        self.register_buffer("sizes", sizes, persistent=False)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes, persistent=False)
        self.register_buffer("entity_types", pairs[:, 1].clone(), persistent=False)
        self.register_buffer("type_counts", type_counts, persistent=False)
        self.register_buffer(
            "type_starts", torch.cumsum(type_counts, 0) - type_counts, persistent=False
        )
        self.register_load_state_dict_pre_hook(_drop_stored_types)

    def types_of(self, entities: LongTensor) -> tuple[LongTensor, LongTensor]:
        """Every (place, type) with ``entities[place]`` of that type, ``entities`` shape (N,):
        two tensors of shape (P,), places in increasing order."""
        counts = self.type_counts[entities]
        places = torch.repeat_interleave(torch.arange(len(entities), device=counts.device), counts)
        # Each pair's rank among its entity's types, added to where they start.
        ends = torch.cumsum(counts, 0)
        rank = torch.arange(len(places), device=counts.device) - (ends - counts)[places]
        return places, self.entity_types[self.type_starts[entities][places] + rank]

    def membership(self, entities: LongTensor) -> BoolTensor:
        """shape (N, T): whether ``entities[n]``, shape (N,), has type t."""
        places, kinds = self.types_of(entities)
        found = torch.zeros(len(entities), self.num_types, dtype=torch.bool, device=kinds.device)
        found[places, kinds] = True
        return found

    def draw(
        self, allowed: BoolTensor, width: int, generator: torch.Generator
    ) -> tuple[LongTensor, BoolTensor]:
        """``width`` entities per row of ``allowed``, shape (B, T + 1), each of an allowed type:
        ids, shape (B, width), and whether the row had any entity to draw from, shape (B,).
        Within the allowed types every entity is equally likely, but one in several of them is
        that many times as likely. A row without any gets draws it must not use."""
        weights = allowed * self.sizes
        usable = weights.sum(1) > 0
        weights = torch.where(usable[:, None], weights, self.sizes).float()
        kinds = torch.multinomial(weights, width, replacement=True, generator=generator)
        position = torch.rand(kinds.shape, generator=generator, device=generator.device)
        sizes = self.sizes[kinds]
        index = self.offsets[kinds] + (position * sizes).long().clamp_max(sizes - 1)
        return self.members[index], usable

    def draw_into(
        self,
        drawn: LongTensor,
        chosen: BoolTensor,
        types: BoolTensor,
        generator: torch.Generator,
        untyped: bool = False,
    ) -> LongTensor:
        """``drawn``, shape (B, K), with its places ``chosen``, shape (B, K), holding entities of
        the types ``types``, shape (B, T) (and entities of none, if ``untyped``) instead, in the
        rows that have any such entity."""
        allowed = torch.cat([types, types.new_full((len(types), 1), untyped)], 1)
        picked, usable = self.draw(allowed, drawn.shape[1], generator)
        return torch.where(chosen & usable[:, None], picked, drawn)


def _drop_stored_types(
    module: nn.Module, state: dict[str, Tensor], prefix: str, *args: object
) -> None:
    """Removes from ``state`` the tables that checkpoints of earlier versions stored."""
    for name in ("membership", "members", "sizes", "offsets"):
        state.pop(prefix + name, None)
