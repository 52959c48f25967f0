"""The paper's experiments in one place: its published figures name only its samplers and
decoders, every command takes its defaults from there, and every fixed setting is a real one."""

import dans
from dans.cli import build_parser
from dans.experiments import paper
from dans.samplers.base import sampler_names


def test_the_published_figures_name_the_papers_samplers_decoders_and_metrics():
    values = paper.published()["values"]
    assert set(values) == {"umls", "wn18rr", "nell-995"}
    for by_decoder in values.values():
        assert set(by_decoder) <= set(paper.DECODERS)
        for by_sampler in by_decoder.values():
            assert set(by_sampler) <= set(paper.SAMPLERS)
            for figures in by_sampler.values():
                assert set(figures) <= {"mrr", "hits@1", "ndcg@5"}
                assert all(len(pair) == 2 and 0 <= pair[0] <= 1 for pair in figures.values())
    assert set(paper.published()["rows"]) <= set(paper.SAMPLERS)


def test_compare_takes_its_defaults_from_the_paper():
    args = build_parser()[0].parse_args(["compare", "--out", "grid"])
    assert args.samplers == list(paper.SAMPLERS)
    assert args.decoders == list(paper.DECODERS)


def test_every_fixed_setting_is_a_setting_and_every_sampler_exists():
    assert set(paper.SAMPLERS) <= set(sampler_names())
    assert set(paper.BASELINES) <= set(paper.SAMPLERS)
    for changes in paper.ABLATIONS.values():
        dans.TrainConfig(sampler="dans", **changes).validate()
    specs = dans.TrainConfig.specs()
    assert all(key in specs for key in paper.SWEEP_ALIASES.values())
