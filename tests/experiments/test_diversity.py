"""Diversity measures against hand-worked answers, and on real samplers."""

import json
import math

import pytest
import torch

import dans
from dans.builders import build_model, build_sampler
from dans.data.graph import KnowledgeGraph
from dans.experiments.diversity import DIVERSITY_COLUMNS, measure_diversity
from dans.experiments.grids import GridOptions
from dans.models.decoders import DistMult
from dans.models.encoders import LookupEncoder
from dans.models.model import KGModel
from dans.samplers.base import Negatives

pytestmark = pytest.mark.usefixtures("one_thread")

# Entities in 2-D: e0 (1, 1), e1 (1, 0), e2 (0, 1), e3 (3, 4); the relation is (1, 2).
ENTITIES = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])


def _toy():
    """Train (e0, r, e1); valid (e0, r, e2); test (e2, r, e3)."""
    kg = KnowledgeGraph(
        ["e0", "e1", "e2", "e3"],
        ["r"],
        torch.tensor([[0, 0, 1]]),
        torch.tensor([[0, 0, 2]]),
        torch.tensor([[2, 0, 3]]),
    )
    model = KGModel(LookupEncoder(4, 2), DistMult(1, 2))
    with torch.no_grad():
        model.encoder.embeddings.weight.copy_(ENTITIES)
        model.decoder.relation_embeddings.copy_(torch.tensor([[1.0, 2.0]]))
    return kg, model


class _Fixed(torch.nn.Module):
    """Replaces the tail of every positive by e2, e3, e3 (as ids, or as vectors near them)."""

    draws_negatives = True

    def __init__(self, with_ids):
        super().__init__()
        self.with_ids = with_ids

    def sample(self, step):
        ids = torch.tensor([[2, 3, 3]]).expand(len(step.positives), -1)
        vectors = step.entities[ids] + (0 if self.with_ids else 0.1)
        head_replaced = torch.zeros_like(ids, dtype=torch.bool)
        return Negatives(vectors, head_replaced, ids if self.with_ids else None)


@pytest.mark.parametrize("with_ids", [True, False])
def test_hand_worked_measures(with_ids):
    kg, model = _toy()
    found = measure_diversity(model, _Fixed(with_ids), kg, seed=1)
    # Ordered pairs of (e2, e3, e3): four at distance |e2 - e3| = sqrt(18), two at 0, over 6.
    assert found["mean_pairwise_distance"] == pytest.approx(4 * math.sqrt(18) / 6)
    assert found["coverage"] == 0.5 and found["distinct_entities"] == 2
    assert found["entropy"] == pytest.approx(-(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3))
    assert found["max_entropy"] == pytest.approx(math.log(4))
    # (e0, r, e2) is a valid triple the train filter cannot know; (e0, r, e3) is no triple.
    assert found["false_negative_rate"] == pytest.approx(1 / 3)
    # Scores <e0 * r, t>: e2 -> 0 + 2 = 2, e3 -> 3 + 8 = 11; the positive e1 -> 1.
    if with_ids:
        assert found["mean_negative_score"] == pytest.approx((2 + 11 + 11) / 3)
    assert found["mean_positive_score"] == pytest.approx(1.0)
    assert found["entities_by"] == (
        "the sampler's own ids" if with_ids else "nearest entity to each vector"
    )
    assert found["positives"] == 1 and found["groups"] == {}
    assert (
        set(DIVERSITY_COLUMNS) <= found.keys()
        and set(DIVERSITY_COLUMNS) == found["definitions"].keys()
    )


def _measure(sampler_name, umls, **settings):
    config = dans.TrainConfig(encoder="lookup", dim=16, sampler=sampler_name, **settings)
    torch.manual_seed(0)
    model = build_model(config, umls)
    sampler = build_sampler(sampler_name, config, umls)
    return measure_diversity(model, sampler, umls, seed=1, max_positives=2000)


def test_uniform_covers_more_evenly_than_popularity(umls):
    uniform, popularity = _measure("uniform", umls), _measure("popularity", umls)
    assert uniform["positives"] == 2000 and uniform["negatives_per_positive"] == 20
    assert uniform["coverage"] == 1.0  # 40,000 uniform draws over 135 entities
    assert uniform["entropy"] == pytest.approx(math.log(umls.num_entities), abs=0.01)
    assert popularity["entropy"] < uniform["entropy"] - 0.1


def test_dans_is_measured_per_pathway(umls):
    found = _measure("dans", umls)
    assert found["entities_by"] == "nearest entity to each vector"
    groups = found["groups"]
    assert set(groups) == {"entity_pathway", "relation_pathway", "generated", "uniform"}
    assert [
        groups[g]["negatives_per_positive"] for g in ("entity_pathway", "relation_pathway")
    ] == [5, 5]
    assert groups["uniform"]["negatives_per_positive"] == 10
    for summary in groups.values():
        assert 0 < summary["coverage"] <= 1 and 0 <= summary["false_negative_rate"] <= 1


def test_cli_diversity_writes_json_and_refuses_what_is_not_a_run(tmp_path, capsys, umls):
    from dans.cli import main

    run = tmp_path / "run"
    settings = ["--encoder", "lookup", "--dim", "8", "--epochs", "1", "--device", "cpu"]
    assert main(["train", "--out", str(run), "--quiet", "--sampler", "popularity", *settings]) == 0
    capsys.readouterr()
    out = tmp_path / "deep"
    assert main(["diversity", str(run), "--out", str(out), "--max-positives", "500"]) == 0
    found = json.loads((out / "diversity.json").read_text())
    assert found["sampler"] == "popularity" and found["positives"] == 500
    printed = capsys.readouterr().out
    assert all(f"{key:24}" in printed for key in DIVERSITY_COLUMNS)
    # --out naming the JSON file itself, as before: read for one release, with a warning.
    old = tmp_path / "d.json"
    assert main(["diversity", str(run), "--out", str(old), "--max-positives", "500"]) == 0
    assert json.loads(old.read_text()) == found
    assert capsys.readouterr().err == (
        "dans diversity: warning: --out FILE.json is deprecated: --out is a folder, and "
        "diversity.json is written in it\n"
    )
    assert main(["diversity", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_grid_runs_carry_their_diversity_when_asked(tmp_path, umls):
    from dans.experiments.compare import compare

    config = dans.TrainConfig(encoder="lookup", dim=8, epochs=1, device="cpu")
    options = GridOptions(False, lambda _: None, diversity=True)
    rows = compare(config, ["uniform"], ["distmult"], 1, tmp_path, options)
    stored = json.loads(
        (tmp_path / "runs" / "uniform-distmult-seed1" / "diversity.json").read_text()
    )
    assert stored["positives"] == len(umls.train)
    for key in DIVERSITY_COLUMNS:
        assert rows[0].diversity[key] == stored[key]
