"""The paper's experiments in one place: its published figures name only its samplers and
decoders, every command takes its defaults from there, every fixed setting is a real one, and
its table's cells, tests and costs by hand."""

import math

import pytest

import dans
from dans.cli import build_parser
from dans.experiments import paper
from dans.experiments.paper import paper_table, run_key
from dans.experiments.tables import three
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


def test_cells_give_their_seeds_tests_devices_and_costs(result_row):
    uniform = [0.30, 0.31, 0.32]
    mcns = [0.35, 0.37, 0.36]
    rows = [result_row("uniform", s, m) for s, m in enumerate(uniform, 1)]
    rows += [result_row("mcns", s, m, device="cuda") for s, m in enumerate(mcns, 1)]
    rows += [result_row("kbgan", 1, 0.2), result_row("kbgan", 2, 0.25)]
    epochs = {run_key(row): float(row.seed) for row in rows}
    published = {"distmult": {"mcns": {"mrr": [0.376, 0.01]}, "sans": {"mrr": [0.349, 0.01]}}}
    samplers = ["uniform", "mcns", "kbgan", "sans", "cake"]
    markdown, figures = paper_table(rows, published, samplers, ["distmult", "rotate"], 3, epochs)
    # By hand: MCNS's differences .05, .06, .04 give t = 5 sqrt(3) on 2 degrees of freedom, so
    # p = 1 - t / sqrt(t^2 + 2); KBGAN's -.10 and -.06 (seeds 1 and 2) give t = -4 on 1, so
    # p = 1 - 2 atan(4) / pi = .156. Holm doubles the smaller of the two tests.
    t = 5 * math.sqrt(3)
    p_mcns = 2 * (1 - t / math.sqrt(t**2 + 2))
    p_kbgan = 1 - 2 * math.atan(4) / math.pi
    lines = {line.split(" | ")[0]: line for line in markdown.splitlines()}
    assert lines["| mcns"].startswith("| mcns | 3 | ")
    assert "| .376 | " in lines["| mcns"]
    # p, where it ran, the mean of its runs' median epochs (seeds 1, 2, 3), peak memory.
    assert lines["| mcns"].endswith(f"| {three(p_mcns)} | cuda | 2.0 | 1000 |")
    assert lines["| kbgan"].startswith("| kbgan | 2 (incomplete) | ")
    assert lines["| kbgan"].endswith(f"| {three(p_kbgan)} | cpu | 1.5 | 1000 |")
    # Not run, but in the paper: a row of dashes beside the paper's value. In neither: no row.
    assert lines["| sans"].startswith("| sans | 0 | – | .349 | ")
    assert lines["| sans"].endswith("| – | – | – | – |")
    assert "| cake" not in lines
    assert "Not run yet: RotatE." in markdown
    # Under a second an epoch keeps two decimals: seeds' medians .05, .06 and .10.
    fast = {run_key(row): {1: 0.05, 2: 0.06, 3: 0.10}[row.seed] for row in rows}
    markdown, _ = paper_table(rows, published, samplers, ["distmult"], 3, fast)
    assert "| cuda | 0.07 | 1000 |" in markdown
    by_sampler = {figure["sampler"]: figure for figure in figures}
    assert by_sampler["mcns"]["ours"]["mrr"] == mcns
    assert by_sampler["mcns"]["p_holm_vs_uniform"] == pytest.approx(p_mcns)
    assert by_sampler["mcns"]["devices"] == ["cuda"]
    assert by_sampler["sans"]["seeds"] == []
    assert "cake" not in by_sampler
