"""Entity types: from a types.tsv beside the splits, from type: prefixes, or derived."""

import warnings

import pytest
import torch

from dans.data import types as types_module
from dans.data.graph import KnowledgeGraph
from dans.data.types import derived_types, prefix_types, read_types
from dans.errors import DataError


def _graph(folder, train, types=None):
    folder.mkdir()
    (folder / "train.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in train))
    (folder / "valid.txt").write_text(f"{train[0][0]}\t{train[0][1]}\t{train[0][2]}\n")
    (folder / "test.txt").write_text(f"{train[-1][0]}\t{train[-1][1]}\t{train[-1][2]}\n")
    if types is not None:
        (folder / "types.tsv").write_text(types)
    return KnowledgeGraph.from_folder(folder)


TRAIN = [("ann", "born_in", "paris"), ("bob", "born_in", "rome"), ("paris", "in", "france")]


def test_a_types_file_gives_each_entity_its_types(tmp_path):
    kg = _graph(tmp_path / "g", TRAIN, "ann\tperson\nbob\tperson\nparis\tcity\nparis\tcapital\n")
    types = kg.entity_types
    assert types.source == "types.tsv"
    assert types.names == ["capital", "city", "person"]
    member = types.membership(kg.num_entities)
    by_name = {
        name: {types.names[t] for t in member[kg.entity_to_id[name]].nonzero().flatten().tolist()}
        for name in kg.entity_names
    }
    assert by_name == {
        "ann": {"person"},
        "bob": {"person"},
        "paris": {"capital", "city"},
        "rome": set(),
        "france": set(),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ann\tperson\nbob person\n", r"types.tsv:2: expected entity<TAB>type, got 'bob person'"),
        ("ann\tperson\ncarl\tperson\n", r"types.tsv:2: entity 'carl' is in no split"),
        ("ann\t\n", r"types.tsv:1: expected entity<TAB>type"),
        ("\n\n", r"types.tsv: names no types"),
    ],
)
def test_a_malformed_types_file_is_refused_naming_the_line(tmp_path, text, message):
    path = tmp_path / "types.tsv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_types(path, {"ann": 0, "bob": 1})


def test_names_with_a_type_prefix_give_their_types():
    types = prefix_types(["city:paris", "person:ann", "city:rome"])
    assert types is not None and types.source == "the prefixes of entity names"
    assert types.names == ["city", "person"]
    assert types.pairs.tolist() == [[0, 0], [1, 1], [2, 0]]
    assert prefix_types(["city:paris", "ann"]) is None


@pytest.mark.parametrize("mini_batches", [False, True])
def test_types_derived_from_the_graph_group_entities_with_the_same_relations(
    monkeypatch, mini_batches
):
    if mini_batches:  # as a graph of millions of entities is clustered
        monkeypatch.setattr(types_module, "FULL_KMEANS_ENTITIES", 10)
    # Entities 0-9 are heads of relation 0, entities 10-19 tails of relation 1: two kinds.
    train = torch.tensor(
        [[i, 0, 20 + i % 3] for i in range(10)] + [[23, 1, i] for i in range(10, 20)]
    )
    types = derived_types(train, 24, 2)
    label = {e: t for e, t in types.pairs.tolist()}
    assert len(label) == 24  # one type each
    assert len({label[e] for e in range(10)}) == 1
    assert len({label[e] for e in range(10, 20)}) == 1
    assert label[0] != label[10]
    # Seeded: the same graph gets the same types.
    assert torch.equal(derived_types(train, 24, 2).pairs, types.pairs)


def test_a_graph_without_types_derives_them_and_says_so(tmp_path):
    kg = _graph(tmp_path / "g", TRAIN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        types = kg.entity_types
    assert "clusters of the entities' relation signatures" in types.source
    (message,) = [str(w.message) for w in caught if "types" in str(w.message)]
    assert message.startswith("g: no types.tsv and no type: prefixes in the entity names, so")
