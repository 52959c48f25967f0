"""The memory a run's settings need, against hand-worked sizes, and the refusal of settings that
cannot fit, before anything is written."""

import contextlib
import io

import pytest
import torch

from dans.cli import main
from dans.config import TrainConfig
from dans.data.graph import KnowledgeGraph
from dans.errors import DansError
from dans.training.footprint import check_fits, estimate

# 4 entities, 2 relations, 6 train triples.
TRAIN = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 1, 3], [3, 1, 0], [0, 1, 2], [1, 0, 3]])
GRAPH = KnowledgeGraph(["a", "b", "c", "d"], ["r", "s"], TRAIN, TRAIN[:1], TRAIN[1:2])
SETTINGS = dict(dim=8, negatives=5, batch_size=1000, eval_memory_mb=1.0)


def test_a_lookup_encoders_footprint_by_hand():
    footprint = estimate(TrainConfig(encoder="lookup", **SETTINGS), GRAPH)
    # Tables: 4 x 8 entity values and 2 x 2 relations up to 2 x 8 wide, each held four times
    # (value, gradient, two Adam moments) in 4 bytes.
    assert footprint.tables == (4 * 8 + 2 * 2 * 2 * 8) * 4 * 4 == 1536
    assert footprint.activations == 0
    # The batch is the 6 train triples: 6 x 5 negatives, each 3 vectors of 8 and a score.
    assert footprint.negatives == 6 * 5 * (3 * 8 + 1) * 4 == 3000
    assert footprint.evaluation == 2**20
    assert footprint.total == 1536 + 3000 + 2**20


def test_an_rgcn_encoders_footprint_by_hand():
    footprint = estimate(TrainConfig(encoder="rgcn", layers=2, bases=4, **SETTINGS), GRAPH)
    # Per layer: 4 bases of 8 x 8, 4 relations (with inverses) x 4 basis weights, a self loop.
    weights = 2 * (4 * 64 + 4 * 4 + 64)
    assert footprint.tables == (96 + weights) * 16 == 12288
    # Per layer: 12 (entity, edge type) pairs (6 triples, both ways) twice over, and each
    # entity's 8 values three times.
    assert footprint.activations == 2 * (2 * 12 * 8 + 3 * 4 * 8) * 4 == 2304


def test_settings_that_cannot_fit_are_refused_in_one_line():
    config = TrainConfig(encoder="lookup", **{**SETTINGS, "dim": 10**9})
    with pytest.raises(DansError, match=r"^these settings need about [\d,.]+ GiB of memory"):
        check_fits(config, GRAPH, torch.device("cpu"))
    check_fits(TrainConfig(encoder="lookup", **SETTINGS), GRAPH, torch.device("cpu"))


def test_dim_of_a_billion_is_refused_before_any_folder_is_made(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dim", "1000000000", "--epochs", "1", "--quiet", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("dans train: error: these settings need about ") and "Traceback" not in err
    )
    assert "but this machine has " in err and err.count("\n") == 1
    assert not out.exists()
