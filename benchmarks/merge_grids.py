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

from dans.experiments.compare import KEY_COLUMNS, render_table
from dans.experiments.grids import write_table
from dans.experiments.results import RESULTS_FILE, GridRow, read_rows, result_columns, results_csv
from dans.files import make_folder, write_atomic


def merge(tables: list[list[GridRow]]) -> list[GridRow]:
    """The rows of every table, in order; a run two tables hold (the same dataset, sampler,
    decoder and seed) is the later table's."""
    rows: dict[tuple[str, ...], GridRow] = {}
    for table in tables:
        for row in table:
            rows[row.dataset, *(row.key[key] for key in KEY_COLUMNS), str(row.seed)] = row
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results.csv files of the grids")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args()
    rows = merge([read_rows(path) for path in args.results])
    make_folder(args.out)
    write_atomic(args.out / RESULTS_FILE, results_csv(rows, result_columns(KEY_COLUMNS)).encode())
    write_table(args.out, render_table(rows))
    print(render_table(rows))


if __name__ == "__main__":
    main()
