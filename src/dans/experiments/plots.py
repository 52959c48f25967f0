"""The charts of the research-question commands, written as PNGs at least 1000 px wide."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dans.files import write_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE_INCHES, DPI = (10.0, 6.0), 100  # 1000 x 600 px


def _figure(size: tuple[float, float] = SIZE_INCHES) -> Figure:
    """A figure built without pyplot: no global figure state and no display backend.
    matplotlib is imported here, not with the module, since it costs about 0.6 s of start-up
    that the commands without charts should not pay."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI)


SPREAD_LABEL = "mean ± std over seeds"


@dataclass(frozen=True)
class Chart:
    """One panel: a metric's mean ± std over seeds at each point, as bars at text labels, or
    as a line through numeric labels (on a log x axis when ``log_x``). ``points`` are
    (label, mean, std), as :func:`dans.experiments.tables.metric_series` gives them; with none,
    the panel says that nothing has run."""

    title: str
    points: Sequence[tuple[str, float, float]] | Sequence[tuple[float, float, float]]
    log_x: bool = False


def bar_chart(
    labels: Sequence[str],
    means: Sequence[float],
    spreads: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    path: Path,
) -> None:
    """One bar per label with a ±spread error bar, each labelled with its mean."""
    _single(Chart(title, list(zip(labels, means, spreads, strict=True))), xlabel, ylabel, path)


def line_chart(
    xs: Sequence[float],
    means: Sequence[float],
    spreads: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    path: Path,
    log_x: bool,
) -> None:
    """Means against ``xs`` joined by a line, with ±spread error bars."""
    chart = Chart(title, list(zip(xs, means, spreads, strict=True)), log_x)
    _single(chart, xlabel, ylabel, path)


def chart_grid(rows: Sequence[tuple[str, Sequence[Chart]]], ylabel: str, path: Path) -> Figure:
    """A row of panels per (x label, charts) in ``rows``, every panel on its own y axis, as a
    PNG at ``path``; returns the figure drawn."""
    columns = max(len(charts) for _, charts in rows)
    figure = _figure((5.0 * columns, 4.0 * len(rows)))
    grid = figure.subplots(len(rows), columns, squeeze=False)
    for axes_row, (xlabel, charts) in zip(grid, rows, strict=True):
        for axes, chart in zip(axes_row, charts, strict=False):
            _draw(axes, chart)
            axes.set(xlabel=xlabel, ylabel=ylabel if chart.points else "")
        for axes in axes_row[len(charts) :]:
            axes.set_axis_off()
    save_figure(figure, path)
    return figure


def _single(chart: Chart, xlabel: str, ylabel: str, path: Path) -> None:
    """``chart`` alone in a figure of :data:`SIZE_INCHES`, with its legend."""
    figure = _figure()
    axes = figure.subplots()
    _draw(axes, chart)
    axes.set(xlabel=xlabel, ylabel=ylabel)
    axes.legend(loc="best")
    save_figure(figure, path)


def _draw(axes: Axes, chart: Chart) -> None:
    """``chart`` on ``axes``: bars at text labels, a line through numeric ones."""
    axes.set_title(chart.title)
    if not chart.points:
        axes.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_xticks([])
        axes.set_yticks([])
        return
    labels, means, spreads = zip(*chart.points, strict=True)
    if isinstance(labels[0], str):
        bars = axes.bar(labels, means, yerr=spreads, capsize=6, color="#4C72B0", label=SPREAD_LABEL)
        axes.bar_label(bars, labels=[f"{mean:.3f}" for mean in means], padding=3)
        low = min(m - s for m, s in zip(means, spreads, strict=True))
        high = max(m + s for m, s in zip(means, spreads, strict=True))
        margin = max(0.02, 0.5 * (high - low))
        axes.set_ylim(max(0.0, low - margin), high + margin)
        return
    axes.errorbar(labels, means, yerr=spreads, marker="o", capsize=5, label=SPREAD_LABEL)
    if chart.log_x:
        axes.set_xscale("log")
    axes.set_xticks(list(labels), [f"{x:g}" for x in labels])
    axes.grid(alpha=0.3)


def scatter_chart(
    points: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, path: Path
) -> None:
    """One colour per named group of 2-D points."""
    figure = _figure((10.0, 8.0))
    axes = figure.subplots()
    for name, (xs, ys) in points.items():
        axes.scatter(xs, ys, s=14, alpha=0.7, label=f"{name} ({len(xs)})")
    axes.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2")
    axes.legend(markerscale=2)
    save_figure(figure, path)


# The panels of training_curves: log.csv columns, and the generated-minus-uniform score gap
# that DANS derives from its rows (see NegativeSampler.diagnostics).
CURVES = (
    ("loss", "training loss"),
    ("valid_mrr", "validation MRR (filtered)"),
    ("score_gap", "generated - uniform negatives' mean logit"),
)


def training_curves(logs: dict[str, list[dict[str, str]]], title: str, path: Path) -> None:
    """One panel per :data:`CURVES` entry against the epoch, a line per run (``logs``: each
    run's log.csv rows by label, with its sampler's diagnostics). A panel appears when some
    run has its values (the gap: DANS)."""
    series = {key: {label: _curve(rows, key) for label, rows in logs.items()} for key, _ in CURVES}
    panels = [(key, name) for key, name in CURVES if any(xs for xs, _ in series[key].values())]
    figure = _figure((10.0, 3.2 * len(panels)))
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, name) in zip(axes, panels, strict=True):
        for label, (xs, ys) in series[key].items():
            if xs:
                ax.plot(xs, ys, marker="o" if key == "valid_mrr" else None, ms=3, label=label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[0].legend(loc="best")
    axes[-1].set_xlabel("epoch")
    save_figure(figure, path)


def _curve(rows: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
    """The epochs that have ``key`` and its values there."""
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if value not in (None, ""):
            xs.append(int(row["epoch"]))
            ys.append(float(value))
    return xs, ys


def save_figure(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG at ``path``, atomically."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_output(path, buffer.getvalue())
