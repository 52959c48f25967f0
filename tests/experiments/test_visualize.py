"""`dans visualize`: the points it projects, and the PNG and CSV it writes."""

import csv

import pytest

from dans.cli import main
from dans.experiments.visualize import negative_tails
from dans.pipeline import load_run

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = ["--encoder", "lookup", "--dim", "8", "--epochs", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def dans_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "dans"
    assert main(["train", "--out", str(run), "--sampler", "dans", *SETTINGS]) == 0
    return run


def test_points_of_a_relation(dans_run, umls):
    run = load_run(dans_run)
    isa = umls.relation_to_id["isa"]
    triples = umls.train[umls.train[:, 1] == isa]
    points = negative_tails(run, run.sampler, isa, max_positives=50, seed=1)
    by_source = {}
    for point in points:
        by_source.setdefault(point.source, []).append(point)
    assert {s: len(p) for s, p in by_source.items()} == {
        "G_E": 50,
        "G_R": 50,
        "uniform": 50,
        "positive": len(by_source["positive"]),
    }
    positive_tails = {umls.entity_names[t] for t in triples[:, 2].tolist()}
    assert {p.tail for p in by_source["positive"]} <= positive_tails
    heads = {umls.entity_names[h] for h in triples[:, 0].tolist()}
    assert all(p.head in heads and p.tail == "" for p in by_source["G_E"] + by_source["G_R"])
    assert all(p.nearest in umls.entity_to_id for p in points)
    assert all(p.vector.shape == (8,) for p in points)


def test_cli_visualize_writes_png_and_csv(dans_run, tmp_path, capsys, png_size):
    out = tmp_path / "figure"
    argv = ["visualize", str(dans_run), "--relation", "isa", "--out", str(out)]
    assert main([*argv, "--max-positives", "40"]) == 0
    assert png_size(out / "tsne.png")[0] >= 800
    with (out / "tsne.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {r["source"] for r in rows} == {"positive", "G_E", "G_R", "uniform"}
    assert sum(r["source"] == "G_E" for r in rows) == 40
    assert all(float(r["x"]) == float(r["x"]) for r in rows)  # finite coordinates, not NaN
    assert f"{len(rows)} points" in capsys.readouterr().out


def test_cli_visualize_refuses_unknown_relation_and_other_samplers(dans_run, tmp_path, capsys):
    assert main(["visualize", str(dans_run), "--relation", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown relation 'nope'" in capsys.readouterr().err
    other = tmp_path / "uniform"
    assert main(["train", "--out", str(other), *SETTINGS]) == 0
    capsys.readouterr()
    assert main(["visualize", str(other), "--relation", "isa", "--out", str(tmp_path / "v")]) == 2
    assert "needs a run trained with --sampler dans" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()
