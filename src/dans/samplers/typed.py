"""Entities by type, for the samplers that draw negatives of chosen types (CAKE, SMiLE): a draw
is a type, in proportion to its size among the allowed ones, then one of its entities, so that
it costs O(B * T) rather than O(B * E)."""

from __future__ import annotations

import torch
from torch import BoolTensor, LongTensor, nn

from dans.data.types import EntityTypes


class TypedEntities(nn.Module):
    """The entities of each type, and of one more, "untyped", for the entities without any: the
    members of type t are ``members[offsets[t] : offsets[t] + sizes[t]]``. ``membership``,
    shape (E, T), says which of the T real types each entity has."""

    def __init__(self, types: EntityTypes, num_entities: int) -> None:
        super().__init__()
        membership = types.membership(num_entities)
        full = torch.cat([membership, ~membership.any(1, keepdim=True)], 1)
        pairs = full.nonzero()
        order = torch.argsort(pairs[:, 1], stable=True)
        sizes = torch.bincount(pairs[:, 1], minlength=full.shape[1])
        self.register_buffer("membership", membership)
        self.register_buffer("members", pairs[order, 0])
        self.register_buffer("sizes", sizes)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes)

    @property
    def num_types(self) -> int:
        """T, the real types; the "untyped" one is type T."""
        return self.membership.shape[1]

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
