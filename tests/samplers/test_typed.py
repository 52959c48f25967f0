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


def test_each_entitys_types_equal_the_membership_matrix():
    torch.manual_seed(0)
    membership = torch.rand(20, 4) < 0.4  # several types, or none, per entity
    types = EntityTypes(["a", "b", "c", "d"], membership.nonzero(), "random")
    typed = TypedEntities(types, 20)
    entities = torch.randint(20, (50,))
    assert torch.equal(typed.membership(entities), membership[entities])
    places, kinds = typed.types_of(entities)
    pairs = torch.stack([places, kinds], 1).tolist()
    assert sorted(pairs) == membership[entities].nonzero().tolist()
    untyped = typed.members[typed.offsets[4] :]
    assert untyped.tolist() == (~membership.any(1)).nonzero().squeeze(1).tolist()


def test_checkpoints_leave_the_tables_out_and_older_ones_still_load():
    typed = TypedEntities(TYPES, 7)
    assert typed.state_dict() == {}
    older = {"membership": torch.zeros(7, 2, dtype=torch.bool), "members": torch.arange(7)}
    typed.load_state_dict(older)
    assert typed.members.tolist() == [0, 1, 2, 3, 4, 5, 6]
