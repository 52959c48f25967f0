"""Join the result rows of `dans compare` grids that trained the same settings on the same data
(a grid extended later by more samplers, say) and write `dans compare`'s table of them.

    python benchmarks/merge_grids.py benchmarks/results/compare_dans/results.csv \
        GRID/results.csv --out benchmarks/results/umls_table

Writes results.csv (every row, a run that two inputs hold taken from the later one) and
table.md and table.tex, with the paired tests Holm-corrected across the joined table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dans.experiments.compare import render_table
from dans.experiments.grids import RESULTS_FILE, read_results, render_csv, write_table
from dans.files import make_folder, write_atomic

# What tells two runs of a comparison grid apart.
RUN_KEY = ("dataset", "sampler", "decoder", "seed")


def merge(tables: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    """The rows of every table, in order; a run two tables hold is the later table's."""
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for table in tables:
        for row in table:
            rows[tuple(row[key] for key in RUN_KEY)] = row
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results.csv files of the grids")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args()
    tables = [read_results(path) for path in args.results]
    columns = list(dict.fromkeys(column for table in tables for row in table for column in row))
    rows = merge(tables)
    make_folder(args.out)
    write_atomic(args.out / RESULTS_FILE, render_csv(rows, columns).encode())
    write_table(args.out, render_table(rows))
    print(render_table(rows))


if __name__ == "__main__":
    main()
