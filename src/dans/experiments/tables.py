"""Markdown tables of grid results: each metric as mean ± std over seeds, the best of each column
in bold and the runner-up underlined, as the paper prints them; and the same tables as LaTeX."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence

from dans.experiments.results import GridRow

# The paper's table columns, each higher-is-better.
TABLE_METRICS = (("mrr", "MRR"), ("hits@1", "H@1"), ("ndcg@5", "NDCG@5"))
RANKS_NOTE = "filtered, realistic ranks"


def by_seed(rows: Sequence[GridRow], column: str) -> dict[str, dict[int, GridRow]]:
    """The finished rows of each value of key ``column`` (in order of first appearance,
    diverged runs included so that a value none of whose runs finished still gets a line), by
    seed."""
    groups: dict[str, dict[int, GridRow]] = {row.key[column]: {} for row in rows}
    for row in rows:
        if row.finished:
            groups[row.key[column]][row.seed] = row
    return groups


def dataset_of(rows: Sequence[GridRow]) -> str:
    """The dataset the finished rows name ("" before any run finished)."""
    return next((row.dataset for row in rows if row.dataset), "")


def header(first: str, extra: Sequence[str] = ()) -> list[str]:
    titles = [first, "seeds", *(title for _, title in TABLE_METRICS), *extra]
    return ["| " + " | ".join(titles) + " |", "|---" * len(titles) + "|"]


def metric_cells(groups: dict[str, dict[int, GridRow]]) -> dict[str, list[str]]:
    """For each group, its :data:`TABLE_METRICS` as ``mean ± std`` text (the mean alone for a
    single seed), styled against the other groups' means."""
    cells: dict[str, list[str]] = {label: [] for label in groups}
    for key, _ in TABLE_METRICS:
        values = {
            label: [r.test[key] for r in runs.values()] for label, runs in groups.items() if runs
        }
        means = {label: statistics.fmean(seeds) for label, seeds in values.items()}
        ranking = sorted(set(means.values()), reverse=True)
        for label in groups:
            if label not in values:
                cells[label].append("–")
                continue
            mean = means[label]
            text = mean_std_text(values[label])
            if mean == ranking[0]:
                text = f"**{text}**"
            elif len(ranking) > 1 and mean == ranking[1]:
                text = f"<u>{text}</u>"
            cells[label].append(text)
    return cells


def seeds_cell(rows: Sequence[GridRow], runs: dict[int, GridRow], match: Mapping[str, str]) -> str:
    """How many seeds finished, and how many diverged among the rows whose key agrees with
    ``match``."""
    diverged = sum(
        1
        for row in rows
        if row.status == "diverged" and all(row.key[k] == v for k, v in match.items())
    )
    return f"{len(runs)}" + (f" (+{diverged} diverged)" if diverged else "")


def summary_table(rows: Sequence[GridRow], column: str, title: str) -> str:
    """One line per value of ``column``: its seeds and metrics over them."""
    groups = by_seed(rows, column)
    cells = metric_cells(groups)
    lines = [f"{title} ({RANKS_NOTE}).", "", *header(column)]
    for label, runs in groups.items():
        seeds = seeds_cell(rows, runs, {column: label})
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells[label]) + " |")
    return "\n".join(lines) + "\n"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_text(values: Sequence[float]) -> str:
    """``.724 ± .012`` over the values, or ``.724`` alone for a single value: one seed has no
    spread, and ``± .000`` would claim one."""
    mean, spread = mean_std(values)
    return three(mean) if len(values) == 1 else f"{three(mean)} ± {three(spread)}"


def three(value: float) -> str:
    """``.724``: three decimals without the leading zero, as the paper prints them."""
    return f"{value:.3f}".replace("0.", ".", 1) if 0 <= value < 1 else f"{value:.3f}"


def metric_series(
    groups: dict[str, dict[int, GridRow]], key: str
) -> list[tuple[str, float, float]]:
    """(label, mean, std) of ``key`` for each group that has finished runs, for a chart."""
    return [
        (label, *mean_std([r.test[key] for r in runs.values()]))
        for label, runs in groups.items()
        if runs
    ]


# Markdown (and plain text) inside a cell, and its LaTeX, applied in this order.
_LATEX = (
    (re.compile(r"([&%#_$])"), r"\\\1"),
    (re.compile(r"\*\*(.*?)\*\*"), r"\\textbf{\1}"),
    (re.compile(r"<u>(.*?)</u>"), r"\\underline{\1}"),
    (re.compile(r"<(?=\.)"), r"$<$"),
    (re.compile(r" ± "), r" $\\pm$ "),
    (re.compile(r"–"), r"--"),
)


def latex_table(markdown: str) -> str:
    """A table of this module's markdown as a booktabs ``tabular``: the text above the table
    becomes a comment, the header row is set off by rules, and bold, underline, ± and < become
    LaTeX. Needs ``\\usepackage{booktabs}``."""
    lines = markdown.strip().splitlines()
    rows = [line for line in lines if line.startswith("|") and not line.startswith("|---")]
    notes = [line for line in lines if line and not line.startswith("|")]
    cells = [[_latex_cell(cell.strip()) for cell in row.strip("|").split("|")] for row in rows]
    width = len(cells[0])
    body = [" & ".join(row) + r" \\" for row in cells[1:]]
    return (
        "\n".join(
            [
                *(f"% {note}" for note in notes),
                rf"\begin{{tabular}}{{l{'r' * (width - 1)}}}",
                r"\toprule",
                " & ".join(cells[0]) + r" \\",
                r"\midrule",
                *body,
                r"\bottomrule",
                r"\end{tabular}",
            ]
        )
        + "\n"
    )


def _latex_cell(text: str) -> str:
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return text


def paired_p_value(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``values`` against ``baseline`` (matched by seed);
    NaN with fewer than two pairs or when every difference is the same."""
    differences = [a - b for a, b in zip(values, baseline, strict=True)]
    if len(differences) < 2 or max(differences) == min(differences):
        return math.nan
    # SciPy loads here rather than with the module: about 0.9 s that only tables need.
    from scipy import stats

    return float(stats.ttest_rel(values, baseline).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment for testing the p-values together: the i-th smallest of m
    becomes the largest of ``min(1, (m - j + 1) p_(j))`` over j <= i. A NaN (no test) stays NaN
    and does not count in m."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def mrr_p_value(runs: dict[int, GridRow], baseline: dict[int, GridRow]) -> float:
    """:func:`paired_p_value` of the test MRR of two groups' runs (by seed), over the seeds
    both finished."""
    seeds = sorted(runs.keys() & baseline.keys())
    return paired_p_value(
        [runs[s].test["mrr"] for s in seeds], [baseline[s].test["mrr"] for s in seeds]
    )


def p_text(sampler: str, baseline: str, p: float) -> str:
    """A table's p cell: empty for the baseline itself, – for no test, three decimals else."""
    if sampler == baseline:
        return ""
    if math.isnan(p):
        return "–"
    return "<.001" if p < 0.001 else three(p)
