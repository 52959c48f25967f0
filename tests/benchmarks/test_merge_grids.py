"""benchmarks/merge_grids.py: rows of grids joined in order, a run two grids hold the later's."""

import importlib.util
from pathlib import Path

from dans.experiments.results import GridRow

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "merge_grids.py"
spec = importlib.util.spec_from_file_location("merge_grids", SCRIPT)
merge_grids = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge_grids)


def _row(sampler, seed, mrr, dataset="umls"):
    key = {"sampler": sampler, "decoder": "distmult"}
    return GridRow(key, seed, dataset=dataset, test={"mrr": mrr})


def test_rows_join_in_order_and_a_run_held_twice_is_the_later_grids():
    first = [_row("uniform", 1, 0.70), _row("dans", 1, 0.71), _row("dans", 2, 0.5)]
    later = [_row("dans", 1, 0.72), _row("all-entities", 1, 0.80), _row("dans", 1, 0.1, "wn18rr")]
    merged = merge_grids.merge([first, later])
    assert [(r.dataset, r.key["sampler"], r.seed, r.test["mrr"]) for r in merged] == [
        ("umls", "uniform", 1, 0.70),
        ("umls", "dans", 1, 0.72),
        ("umls", "dans", 2, 0.5),
        ("umls", "all-entities", 1, 0.80),
        ("wn18rr", "dans", 1, 0.1),
    ]
