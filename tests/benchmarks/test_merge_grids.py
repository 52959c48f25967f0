"""benchmarks/merge_grids.py: rows of grids joined in order, a run two grids hold the later's."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "merge_grids.py"
spec = importlib.util.spec_from_file_location("merge_grids", SCRIPT)
merge_grids = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merge_grids)


def _row(sampler, seed, mrr):
    return {
        "dataset": "umls",
        "sampler": sampler,
        "decoder": "distmult",
        "seed": str(seed),
        "mrr": mrr,
    }


def test_rows_join_in_order_and_a_run_held_twice_is_the_later_grids():
    first = [_row("uniform", 1, ".70"), _row("dans", 1, ".71")]
    later = [_row("dans", 1, ".72"), _row("all-entities", 1, ".80")]
    merged = merge_grids.merge([first, later])
    assert [(r["sampler"], r["mrr"]) for r in merged] == [
        ("uniform", ".70"),
        ("dans", ".72"),
        ("all-entities", ".80"),
    ]
