"""PyKEEN's datasets and triples factories as graphs: the same triples, ids and labels."""

import pytest
import torch
from pykeen.datasets import Nations

import dans
from dans.cli import main
from dans.data import from_triples_factories
from dans.errors import DataError


@pytest.fixture(scope="module")
def nations():
    return Nations()


def test_a_pykeen_dataset_loads_with_its_own_splits_ids_and_labels(nations):
    kg = dans.load_dataset("pykeen:nations")
    assert kg.name == "pykeen:Nations"
    for split, factory in zip(
        ("train", "valid", "test"),
        (nations.training, nations.validation, nations.testing),
        strict=True,
    ):
        assert torch.equal(kg.split(split), factory.mapped_triples.long())
    assert kg.entity_to_id == nations.training.entity_to_id
    assert kg.relation_to_id == nations.training.relation_to_id
    # The same labelled triples as PyKEEN's own factory.
    labelled = {tuple(row) for row in nations.testing.triples.tolist()}
    names = kg.entity_names, kg.relation_names
    assert {(names[0][h], names[1][r], names[0][t]) for h, r, t in kg.test.tolist()} == labelled


def test_an_unknown_pykeen_dataset_is_refused_with_the_names_pykeen_has():
    with pytest.raises(DataError, match=r"unknown PyKEEN dataset 'nope'; PyKEEN has: .*nations"):
        dans.load_dataset("pykeen:nope")


def test_a_triples_factory_trains_and_its_run_loads_back_with_it(tmp_path, nations, one_thread):
    kg = from_triples_factories(nations.training, nations.validation, nations.testing)
    config = dans.TrainConfig(encoder="lookup", dim=8, epochs=2, device="cpu")
    run = dans.train(config, out=tmp_path / "run", progress=False, graph=kg)
    loaded = dans.load_run(tmp_path / "run", graph=kg)
    assert loaded.kg is kg
    again = dans.evaluate(loaded.model, kg, "test")
    assert again.mrr == pytest.approx(run.metrics.test.mrr, abs=1e-12)
    # Without it, the run's configuration names UMLS, whose splits differ: refused in one line.
    with pytest.raises(DataError, match=r"differs from the file .* was trained on"):
        dans.load_run(tmp_path / "run")


def test_splits_with_other_ids_than_training_are_refused(nations):
    from pykeen.triples import TriplesFactory

    other = TriplesFactory.from_labeled_triples(nations.testing.triples)  # its own, smaller ids
    with pytest.raises(DataError, match="the test split has other ids than the training split"):
        from_triples_factories(nations.training, nations.validation, other)
    with pytest.raises(DataError, match="has no validation split"):
        from_triples_factories(nations.training, None, nations.testing)


def test_the_command_line_trains_on_a_pykeen_dataset(tmp_path, one_thread):
    code = main(
        ["train", "--dataset", "pykeen:Nations", "--encoder", "lookup", "--dim", "8",
         "--epochs", "2", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 0
    assert dans.load_run(tmp_path / "run").kg.name == "pykeen:Nations"
