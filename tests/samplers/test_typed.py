"""Drawing entities by type: only allowed types, every entity of them about equally often, and
the untyped group."""

import torch

from dans.data.types import EntityTypes
from dans.samplers.typed import TypedEntities

# Type 0: entities 0-1; type 1: entities 2-5; entity 6 untyped.
TYPES = EntityTypes(["a", "b"], torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1], [4, 1], [5, 1]]), "t")


def test_the_groups_by_hand():
    typed = TypedEntities(TYPES, 7)
    assert typed.num_types == 2
    assert typed.sizes.tolist() == [2, 4, 1]
    assert typed.members.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert typed.offsets.tolist() == [0, 2, 6]


def test_draws_spread_evenly_over_the_entities_of_the_allowed_types():
    typed = TypedEntities(TYPES, 7)
    allowed = torch.tensor([[True, True, False], [False, False, True], [False, False, False]])
    ids, usable = typed.draw(allowed, 6000, torch.Generator().manual_seed(0))
    assert usable.tolist() == [True, True, False]
    counts = torch.bincount(ids[0], minlength=7)
    assert counts[6] == 0 and (counts[:6] > 850).all() and (counts[:6] < 1150).all()
    assert set(ids[1].tolist()) == {6}
