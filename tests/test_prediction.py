"""Link prediction: the top-k entities of a query against a brute-force ranking, the train
exclusion, the file of queries, and the command."""

import json

import pytest
import torch

from dans.cli import main
from dans.errors import DataError
from dans.prediction import Query, predict, read_queries

pytestmark = pytest.mark.usefixtures("one_thread")


def _brute_force(complex_run, query, exclude_train=False):
    """Every entity placed in the query and scored one triple at a time, best first."""
    kg = complex_run.kg
    candidates = range(kg.num_entities)
    if query.asks_head:
        triples = [
            (e, kg.relation_id(query.relation), kg.entity_id(query.tail)) for e in candidates
        ]
    else:
        triples = [
            (kg.entity_id(query.head), kg.relation_id(query.relation), e) for e in candidates
        ]
    triples = torch.tensor(triples)
    if exclude_train:
        triples = triples[~kg.train_known_triples.contains(triples)]
    with torch.no_grad():
        scores = complex_run.model.score_hrt(triples)
    order = torch.argsort(scores, descending=True, stable=True)
    answer = triples[order, 0 if query.asks_head else 2]
    return [kg.entity_names[e] for e in answer.tolist()], scores[order].tolist()


QUERIES = [
    Query("body_part_organ_or_organ_component", "location_of", "?"),
    Query("?", "location_of", "disease_or_syndrome"),
    Query("cell", "part_of", "?"),
]


@pytest.mark.parametrize("exclude_train", [False, True])
def test_predictions_are_the_brute_force_ranking(complex_run, exclude_train):
    found = predict(complex_run, QUERIES, k=7, exclude_train=exclude_train)
    assert [p.query for p in found] == QUERIES
    for prediction in found:
        names, scores = _brute_force(complex_run, prediction.query, exclude_train)
        assert prediction.entities == names[:7]
        assert prediction.scores == pytest.approx(scores[:7], abs=1e-5)


def test_excluding_train_leaves_out_exactly_the_known_answers(complex_run):
    query = QUERIES[0]
    every = predict(complex_run, [query], k=complex_run.kg.num_entities)[0]
    new = predict(complex_run, [query], k=complex_run.kg.num_entities, exclude_train=True)[0]
    head, relation = (
        complex_run.kg.entity_id(query.head),
        complex_run.kg.relation_id(query.relation),
    )
    known = {
        complex_run.kg.entity_names[t]
        for h, r, t in complex_run.kg.train.tolist()
        if (h, r) == (head, relation)
    }
    assert known, "the query must have train answers for the check"
    assert new.entities == [name for name in every.entities if name not in known]


def test_a_bad_query_is_refused_with_its_source(complex_run, tmp_path):
    with pytest.raises(DataError, match="unknown entity 'nowhere'"):
        predict(complex_run, [Query("nowhere", "location_of", "?")])
    with pytest.raises(DataError, match=r"^q.tsv:2: query \(\?, location_of, \?\) must have"):
        predict(complex_run, [QUERIES[0], Query("?", "location_of", "?", "q.tsv:2")])


def test_a_file_of_queries_keeps_its_line_numbers(tmp_path):
    path = tmp_path / "queries.tsv"
    path.write_text("cell\tpart_of\t?\n\n?\tlocation_of\tdisease_or_syndrome\n")
    assert read_queries(path) == [
        Query("cell", "part_of", "?", f"{path}:1"),
        Query("?", "location_of", "disease_or_syndrome", f"{path}:3"),
    ]


def test_cli_predict_one_query_and_a_file(complex_run, complex_run_dir, tmp_path, capsys):
    argv = ["predict", str(complex_run_dir), "--head", "cell", "--relation", "part_of", "--k", "3"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = predict(complex_run, [Query("cell", "part_of", "?")], k=3)[0]
    assert printed[0] == "(cell, part_of, ?)"
    assert [line.split()[1] for line in printed[2:]] == expected.entities

    path = tmp_path / "queries.tsv"
    path.write_text("cell\tpart_of\t?\n?\tlocation_of\tdisease_or_syndrome\n")
    argv = ["predict", str(complex_run_dir), "--queries", str(path), "--k", "2", "--format", "tsv"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "head\trelation\ttail\trank\tentity\tscore"
    assert [line.split("\t")[:4] for line in lines[1:]] == [
        ["cell", "part_of", "?", "1"],
        ["cell", "part_of", "?", "2"],
        ["?", "location_of", "disease_or_syndrome", "1"],
        ["?", "location_of", "disease_or_syndrome", "2"],
    ]
    assert main([*argv[:-2], "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1]["query"] == ["?", "location_of", "disease_or_syndrome"]
    assert len(rows[1]["entities"]) == 2


def test_cli_predict_errors_are_one_line(complex_run_dir, tmp_path, capsys):
    path = tmp_path / "queries.tsv"
    path.write_text("cell\tpart_of\t?\ncell\tnot_a_relation\t?\n")
    assert main(["predict", str(complex_run_dir), "--queries", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"dans predict: error: {path}:2: unknown relation 'not_a_relation': it does not occur "
        "in umls\n"
    )
    with pytest.raises(SystemExit) as info:
        main(["predict", str(complex_run_dir), "--head", "cell"])
    assert info.value.code == 2
    assert "give --relation with --head or --tail" in capsys.readouterr().err


def test_predictions_ignore_the_training_mode_of_the_model(complex_run):
    # Edge dropout in training mode would make every call differ.
    query = [QUERIES[0]]
    expected = predict(complex_run, query, k=5)
    complex_run.model.train()
    try:
        assert predict(complex_run, query, k=5) == predict(complex_run, query, k=5) == expected
        assert complex_run.model.training  # left as it was found
    finally:
        complex_run.model.eval()
