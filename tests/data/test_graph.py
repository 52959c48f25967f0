"""KnowledgeGraph vocabularies and splits; KnownTriples against brute force; benchmark counts."""

import hashlib
import random
import tracemalloc
from pathlib import Path

import pytest
import torch

from dans.data.datasets import DATASETS, bundled_umls, load_dataset
from dans.data.graph import KnowledgeGraph, KnownTriples

# tests/data/test_graph.py -> parents[2] is the repository root; the datasets sit beside it.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def write_splits(folder, train, valid, test):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        text = "".join("\t".join(row) + "\n" for row in rows)
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")


@pytest.fixture
def small_kg(tmp_path):
    write_splits(
        tmp_path / "toy",
        train=[("paris", "capital_of", "france"), ("berlin", "capital_of", "germany")],
        valid=[("france", "borders", "germany")],
        test=[("aachen", "located_in", "germany"), ("paris", "capital_of", "france")],
    )
    return KnowledgeGraph.from_folder(tmp_path / "toy")


def test_vocabulary_spans_all_splits(small_kg):
    # "aachen" and "located_in" occur only in test, "borders" only in valid: all are counted.
    assert small_kg.entity_names == ["aachen", "berlin", "france", "germany", "paris"]
    assert small_kg.relation_names == ["borders", "capital_of", "located_in"]
    assert small_kg.num_entities == 5
    assert small_kg.num_relations == 3


def test_names_map_both_ways(small_kg):
    for i, name in enumerate(small_kg.entity_names):
        assert small_kg.entity_to_id[name] == i
    for i, name in enumerate(small_kg.relation_names):
        assert small_kg.relation_to_id[name] == i
    assert len(small_kg.entity_to_id) == small_kg.num_entities


def test_split_tensors(small_kg):
    for split, rows in (("train", 2), ("valid", 1), ("test", 2)):
        tensor = small_kg.split(split)
        assert tensor.dtype == torch.long
        assert tensor.shape == (rows, 3)
    e, r = small_kg.entity_to_id, small_kg.relation_to_id
    assert small_kg.train.tolist() == [
        [e["paris"], r["capital_of"], e["france"]],
        [e["berlin"], r["capital_of"], e["germany"]],
    ]
    assert small_kg.valid.tolist() == [[e["france"], r["borders"], e["germany"]]]
    assert small_kg.test.tolist()[0] == [e["aachen"], r["located_in"], e["germany"]]
    with pytest.raises(ValueError):
        small_kg.split("dev")


def test_name_and_source(small_kg, tmp_path):
    assert small_kg.name == "toy"
    assert small_kg.source == str(tmp_path / "toy")


def test_ids_sorted_by_name_on_random_names(tmp_path):
    rng = random.Random(3)
    names = [f"e{rng.randrange(10**6)}" for _ in range(40)]
    rows = [(rng.choice(names), f"r{rng.randrange(7)}", rng.choice(names)) for _ in range(60)]
    write_splits(tmp_path / "g", rows[:40], rows[40:50], rows[50:])
    kg = KnowledgeGraph.from_folder(tmp_path / "g", name="given")
    assert kg.name == "given"
    assert kg.entity_names == sorted({h for h, _, _ in rows} | {t for _, _, t in rows})
    assert kg.relation_names == sorted({r for _, r, _ in rows})
    back = [
        (kg.entity_names[h], kg.relation_names[r], kg.entity_names[t])
        for h, r, t in torch.cat([kg.train, kg.valid, kg.test]).tolist()
    ]
    assert back == rows


def random_triples(seed, entities=30, relations=4, count=200):
    gen = torch.Generator().manual_seed(seed)
    triples = torch.stack(
        [
            torch.randint(entities, (count,), generator=gen),
            torch.randint(relations, (count,), generator=gen),
            torch.randint(entities, (count,), generator=gen),
        ],
        dim=1,
    )
    # Duplicates on purpose: repeat the first 30 rows.
    return torch.cat([triples, triples[:30]])


def as_sets(query_index, entity, queries):
    found = [set() for _ in range(queries)]
    for q, e in zip(query_index.tolist(), entity.tolist(), strict=True):
        found[q].add(e)
    return found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_answers_match_brute_force(seed):
    entities, relations = 30, 4
    triples = random_triples(seed, entities, relations)
    known = KnownTriples(triples, entities, relations)
    facts = {tuple(row) for row in triples.tolist()}
    # Every (anchor, relation) pair, so empty answers and repeated queries are covered too.
    anchors = torch.arange(entities).repeat_interleave(relations).repeat(2)
    rels = torch.arange(relations).repeat(entities).repeat(2)
    for predict_head in (False, True):
        query_index, entity = known.answers(anchors, rels, predict_head=predict_head)
        # No duplicate answers, even though the input triples repeat.
        pairs = list(zip(query_index.tolist(), entity.tolist(), strict=True))
        assert len(pairs) == len(set(pairs))
        got = as_sets(query_index, entity, len(anchors))
        for q, (a, r) in enumerate(zip(anchors.tolist(), rels.tolist(), strict=True)):
            if predict_head:
                expected = {h for h, rr, t in facts if rr == r and t == a}
            else:
                expected = {t for h, rr, t in facts if rr == r and h == a}
            assert got[q] == expected, (predict_head, a, r)


def test_answers_on_a_shuffled_block():
    entities, relations = 30, 4
    triples = random_triples(7, entities, relations)
    known = KnownTriples(triples, entities, relations)
    facts = {tuple(row) for row in triples.tolist()}
    queries = triples[torch.randperm(len(triples), generator=torch.Generator().manual_seed(1))]
    query_index, entity = known.answers(queries[:, 0], queries[:, 1], predict_head=False)
    got = as_sets(query_index, entity, len(queries))
    for q, (h, r, t) in enumerate(queries.tolist()):
        assert t in got[q]
        assert got[q] == {tt for hh, rr, tt in facts if hh == h and rr == r}


def test_contains_matches_brute_force():
    entities, relations = 30, 4
    triples = random_triples(5, entities, relations)
    known = KnownTriples(triples, entities, relations)
    facts = {tuple(row) for row in triples.tolist()}
    probes = torch.cat([random_triples(99, entities, relations), triples])
    expected = [tuple(row) in facts for row in probes.tolist()]
    assert known.contains(probes).tolist() == expected
    assert any(expected) and not all(expected)
    # Extreme ids (first and last code) and batched shape (..., 3).
    corners = torch.tensor([[[0, 0, 0], [29, 3, 29]]])
    assert known.contains(corners).shape == (1, 2)
    assert known.contains(corners).tolist() == [[(0, 0, 0) in facts, (29, 3, 29) in facts]]


def test_known_triples_of_a_graph_cover_every_split(small_kg):
    everything = torch.cat([small_kg.train, small_kg.valid, small_kg.test])
    assert small_kg.known_triples.contains(everything).all()
    e, r = small_kg.entity_to_id, small_kg.relation_to_id
    absent = torch.tensor([[e["germany"], r["borders"], e["france"]]])
    assert not small_kg.known_triples.contains(absent).any()


def test_train_entity_counts(small_kg):
    counts = small_kg.train_entity_counts
    assert counts.shape == (5,)
    by_name = dict(zip(small_kg.entity_names, counts.tolist(), strict=True))
    assert by_name == {"aachen": 0, "berlin": 1, "france": 1, "germany": 1, "paris": 1}


def line_count(path):
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip())


@pytest.mark.parametrize("name", ["umls", "wn18rr", "fb15k-237", "nell-995"])
def test_benchmark_counts(name):
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    info = DATASETS[name]
    kg = load_dataset(data_dir=folder)
    assert kg.name == name
    assert (kg.num_entities, kg.num_relations) == (info.entities, info.relations)
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (info.train, info.valid, info.test)
    for split in ("train", "valid", "test"):
        assert len(kg.split(split)) == line_count(folder / f"{split}.txt")
    # No stray carriage return survives into a name (fb15k-237 has CRLF endings).
    assert not any("\r" in n for n in kg.entity_names)


def test_paper_table_values():
    # The published table (README of the datasets), independent of the files.
    table = {
        "umls": (135, 46, 5216, 652, 661),
        "wn18rr": (40943, 11, 86835, 3034, 3134),
        "fb15k-237": (14541, 237, 272115, 17535, 20466),
        "nell-995": (63917, 198, 137465, 5000, 5000),
    }
    for name, row in table.items():
        info = DATASETS[name]
        assert (info.entities, info.relations, info.train, info.valid, info.test) == row


def test_bundled_umls_checksums():
    folder = bundled_umls()
    for split in ("train", "valid", "test"):
        digest = hashlib.sha256((folder / f"{split}.txt").read_bytes()).hexdigest()
        assert digest == DATASETS["umls"].sha256[split]


def test_bundled_umls_equals_shared_copy(monkeypatch, tmp_path):
    folder = SHARED / "umls"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here")
    # Make sure the name resolves to the bundled copy, not some local cache.
    monkeypatch.delenv("DANS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bundled = load_dataset("umls")
    assert Path(bundled.source) == bundled_umls()
    shared = load_dataset(data_dir=folder)
    assert bundled.name == shared.name == "umls"
    assert bundled.entity_names == shared.entity_names
    assert bundled.relation_names == shared.relation_names
    for split in ("train", "valid", "test"):
        assert torch.equal(bundled.split(split), shared.split(split))
        assert (bundled_umls() / f"{split}.txt").read_bytes() == (
            folder / f"{split}.txt"
        ).read_bytes()


def test_the_vocabulary_costs_what_its_names_do_not_rows_times_the_longest(tmp_path):
    # One entity name of 50,000 characters among 2,000 triples: fixed-width strings would take
    # 2,000 x 2 x 50,000 x 4 bytes = 800 MB; Python strings take the names once.
    long_name = "x" * 50_000
    lines = [f"e{i}\tr\t{long_name if i == 0 else f'e{i + 1}'}\n" for i in range(2000)]
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("".join(lines))
    tracemalloc.start()
    try:
        kg = KnowledgeGraph.from_folder(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kg.entity_to_id[long_name] == kg.entity_names.index(long_name)
    assert peak < 50 * 2**20, peak
