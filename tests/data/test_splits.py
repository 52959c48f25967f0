"""Cutting one list of triples into splits, and a graph made from labelled triples: the same as
the graph read from the same split files."""

import pytest

from dans.cli import main
from dans.data import KnowledgeGraph, split
from dans.errors import DataError

# A ring of 30 entities under two relations, and one pendant triple whose tail occurs nowhere
# else: held out, it would name an entity train never does.
RING = [(f"e{i}", "next", f"e{(i + 1) % 30}") for i in range(30)]
RING += [(f"e{i}", "back", f"e{(i - 1) % 30}") for i in range(30)]
TRIPLES = [*RING, ("e0", "next", "lonely")]


def _names(triples):
    return {t[0] for t in triples} | {t[2] for t in triples}, {t[1] for t in triples}


@pytest.mark.filterwarnings("ignore:.*moved to train")
def test_a_split_is_a_seeded_partition_with_every_held_out_name_in_train():
    train, valid, test = split(TRIPLES + TRIPLES[:5], valid=0.1, test=0.2, seed=3)
    assert sorted(train + valid + test) == sorted(set(TRIPLES))  # duplicates dropped, none lost
    assert len(valid) <= 6 and len(test) <= 12 and len(valid) + len(test) >= 16
    entities, relations = _names(train)
    for h, r, t in valid + test:
        assert h in entities and t in entities and r in relations
    assert split(TRIPLES, valid=0.1, test=0.2, seed=3) == (train, valid, test)
    assert split(TRIPLES, valid=0.1, test=0.2, seed=4) != (train, valid, test)


def test_held_out_triples_naming_what_train_lacks_are_moved_to_train():
    # With 90% held out, train starts with 7 triples: most held-out ones name what it lacks.
    with pytest.warns(UserWarning, match=r"of 54 held-out triples .* were moved to train"):
        train, valid, test = split(TRIPLES, valid=0.0, test=0.9, seed=0)
    assert valid == [] and len(train) > 7 and ("e0", "next", "lonely") in train
    entities, relations = _names(train)
    assert all(h in entities and t in entities and r in relations for h, r, t in test)


def test_shares_that_leave_train_nothing_are_refused():
    with pytest.raises(DataError, match="must be shares that leave train some"):
        split(TRIPLES, valid=0.5, test=0.5)


def test_a_graph_from_labelled_triples_is_the_graph_of_the_same_split_files(tmp_path):
    train, valid, test = split(RING, seed=1)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        (tmp_path / f"{name}.txt").write_text("".join("\t".join(t) + "\n" for t in part))
    made = KnowledgeGraph.from_triples(train, valid, test)
    read = KnowledgeGraph.from_folder(tmp_path)
    assert made.entity_names == read.entity_names and made.relation_names == read.relation_names
    for name in ("train", "valid", "test"):
        assert made.split(name).tolist() == read.split(name).tolist()


def test_a_malformed_labelled_triple_is_refused():
    with pytest.raises(DataError, match="a valid triple is not three non-empty names"):
        KnowledgeGraph.from_triples(RING, [("a", "", "b")], [])


def test_dans_split_writes_the_three_files_and_replaces_none(tmp_path, capsys):
    source = tmp_path / "all.txt"
    source.write_text("".join("\t".join(t) + "\n" for t in RING))
    out = tmp_path / "graph"
    assert main(["split", str(source), "--out", str(out), "--seed", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    assert KnowledgeGraph.from_folder(out).split("train").tolist() == (
        KnowledgeGraph.from_triples(*split(RING, seed=1)).split("train").tolist()
    )
    before = (out / "train.txt").read_bytes()
    assert main(["split", str(source), "--out", str(out)]) == 2
    assert "train.txt: exists" in capsys.readouterr().err
    assert (out / "train.txt").read_bytes() == before
