"""Fixtures shared across the test packages."""

import struct

import pytest
import torch

import dans
from dans.data.types import EntityTypes
from dans.experiments.results import GridRow


@pytest.fixture(scope="session")
def umls():
    return dans.load_dataset("umls")


@pytest.fixture(scope="session")
def train_set(umls):
    """What a training sampler may know: train triples only, as Python tuples."""
    return {tuple(t) for t in umls.train.tolist()}


@pytest.fixture(scope="session")
def complex_run_dir(tmp_path_factory):
    """A short RGCN + ComplEx run on UMLS (d 8, 2 epochs) written to a run directory, for the
    commands that use a trained model; ComplEx, so that real and imaginary halves show."""
    out = tmp_path_factory.mktemp("complex") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    config = dans.TrainConfig(encoder="rgcn", decoder="complex", dim=8, epochs=2, device="cpu")
    dans.train(config, out=out, progress=False)
    torch.set_num_threads(before)
    return out


@pytest.fixture(scope="session")
def complex_run(complex_run_dir):
    return dans.load_run(complex_run_dir)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path, monkeypatch):
    """Every test works in its own folder: a command that writes where it is run (`dans train`
    without --out writes under runs/) never writes into the project."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def one_thread():
    """Two intra-op threads on a busy 2-core machine make small steps many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_one_side_replaced(positives, negatives):
    """Each negative keeps its positive's relation and exactly one of its head or tail, and the
    head is the replaced side about half of the time. ``negatives`` must carry ids."""
    triples = negatives.triples(positives)
    expanded = positives[:, None, :].expand(-1, negatives.ids.shape[1], -1)
    replaced = negatives.head_replaced
    assert torch.equal(triples[..., 1], expanded[..., 1])
    # Head replaced: the head is the drawn id and the tail the positive's; and vice versa.
    assert torch.equal(triples[..., 0][replaced], negatives.ids[replaced])
    assert torch.equal(triples[..., 2][replaced], expanded[..., 2][replaced])
    assert torch.equal(triples[..., 2][~replaced], negatives.ids[~replaced])
    assert torch.equal(triples[..., 0][~replaced], expanded[..., 0][~replaced])
    assert 0.4 < replaced.double().mean().item() < 0.6


@pytest.fixture(scope="session")
def one_side_replaced():
    """The check that a sampler's negatives replace exactly one side of their positive."""
    return _check_one_side_replaced


def _png_size(path):
    """(width, height) of a PNG file, read from its header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="session")
def png_size():
    return _png_size


def _random_types(entities, relations, kinds, triples, seed):
    """Random entity types, several or none per entity, and random train triples: the
    membership matrix (E, T), its ``EntityTypes`` and the triples (N, 3)."""
    torch.manual_seed(seed)
    membership = torch.rand(entities, kinds) < 0.4
    types = EntityTypes([f"t{i}" for i in range(kinds)], membership.nonzero(), "random")
    train = torch.randint(entities, (triples, 3))
    train[:, 1] %= relations
    return membership, types, train


@pytest.fixture(scope="session")
def random_types():
    return _random_types


def _result_row(sampler, seed, mrr, device="cpu"):
    """A results.csv row of a DistMult run, its other metrics a fixed step from its MRR."""
    return GridRow(
        key={"sampler": sampler, "decoder": "distmult"},
        seed=seed,
        test={"mrr": mrr, "hits@1": mrr - 0.05, "ndcg@5": mrr + 0.01},
        train_seconds=100.0,
        eval_seconds=20.0,
        peak_memory_mb=1000.0,
        device=device,
    )


@pytest.fixture(scope="session")
def result_row():
    return _result_row
