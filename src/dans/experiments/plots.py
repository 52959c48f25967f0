"""The charts of the research-question commands, written as PNGs at least 1000 px wide."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dans.rundir import write_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZE_INCHES, DPI = (10.0, 6.0), 100  # 1000 x 600 px


def _figure(size: tuple[float, float] = SIZE_INCHES) -> Figure:
    """A figure built without pyplot: no global figure state and no display backend.
    matplotlib is imported here, not with the module, since it costs about 0.6 s of start-up
    that the commands without charts should not pay."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI)


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
    figure = _figure()
    axes = figure.subplots()
    bars = axes.bar(
        labels, means, yerr=spreads, capsize=6, color="#4C72B0", label="mean ± std over seeds"
    )
    axes.bar_label(bars, labels=[f"{mean:.3f}" for mean in means], padding=3)
    low = min(m - s for m, s in zip(means, spreads, strict=True))
    high = max(m + s for m, s in zip(means, spreads, strict=True))
    margin = max(0.02, 0.5 * (high - low))
    axes.set_ylim(max(0.0, low - margin), high + margin)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.legend(loc="best")
    _save(figure, path)


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
    figure = _figure()
    axes = figure.subplots()
    axes.errorbar(xs, means, yerr=spreads, marker="o", capsize=5, label="mean ± std over seeds")
    if log_x:
        axes.set_xscale("log")
    axes.set_xticks(list(xs), [f"{x:g}" for x in xs])
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)


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
    _save(figure, path)


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_output(path, buffer.getvalue())
