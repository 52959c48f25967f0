"""The charts: PNG files at least 800 px wide, written whole."""

import pytest

import dans
from dans.cli import main
from dans.experiments.plots import (
    Chart,
    _curve,
    bar_chart,
    chart_grid,
    line_chart,
    scatter_chart,
    training_curves,
)
from dans.samplers import DANSSampler


def test_bar_chart(tmp_path, png_size):
    path = tmp_path / "bars.png"
    bar_chart(["a", "b"], [0.5, 0.6], [0.01, 0.0], "title", "variant", "MRR", path)
    width, height = png_size(path)
    assert width >= 800 and height > 0


def test_line_chart_on_a_log_axis(tmp_path, png_size):
    path = tmp_path / "line.png"
    line_chart([1e-6, 1e-4, 1e-2], [0.5, 0.6, 0.55], [0.01] * 3, "t", "x", "y", path, True)
    assert png_size(path)[0] >= 800


def test_chart_grid_draws_bars_lines_and_an_empty_panel_each_on_its_own_axis(tmp_path, png_size):
    path = tmp_path / "grid.png"
    bars = Chart("ablation", [("G_E", 0.7, 0.02), ("DANS", 0.75, 0.01)])
    line = Chart("lambda", [(1e-6, 0.2, 0.0), (1e-2, 0.3, 0.05)], log_x=True)
    empty = Chart("not yet", [])
    figure = chart_grid([("variant", [bars, empty]), ("lambda", [line])], "MRR", path)
    assert png_size(path) == (1000, 800)
    (bar_axes, empty_axes), (line_axes, spare_axes) = figure.axes[:2], figure.axes[2:]
    assert [p.get_height() for p in bar_axes.patches] == pytest.approx([0.7, 0.75])
    assert [t.get_text() for t in bar_axes.get_xticklabels()] == ["G_E", "DANS"]
    assert bar_axes.get_ylabel() == "MRR" and bar_axes.get_xlabel() == "variant"
    assert [t.get_text() for t in empty_axes.texts] == ["not run yet"]
    assert empty_axes.get_ylabel() == ""
    (xs, ys) = line_axes.lines[0].get_data()
    assert list(xs) == [1e-6, 1e-2] and list(ys) == [0.2, 0.3]
    assert line_axes.get_xscale() == "log" and line_axes.get_title() == "lambda"
    assert not spare_axes.axison
    # Each panel keeps its own y range: the line's lies nowhere near the bars'.
    assert line_axes.get_ylim()[1] < bar_axes.get_ylim()[0]


def test_scatter_chart_and_no_temporary_left(tmp_path, png_size):
    path = tmp_path / "points.png"
    scatter_chart({"positive": ([0.0, 1.0], [1.0, 0.0]), "uniform": ([2.0], [2.0])}, "t", path)
    assert png_size(path)[0] >= 800
    assert [p.name for p in tmp_path.iterdir()] == ["points.png"]


def _row(epoch, loss, valid="", generated="", uniform=""):
    row = {
        "epoch": str(epoch),
        "loss": str(loss),
        "valid_mrr": str(valid),
        "score_generated": str(generated),
        "score_uniform": str(uniform),
    }
    return {**row, **DANSSampler.diagnostics(row)}


DANS_LOG = [_row(1, 0.7, "", -1.0, -2.5), _row(2, 0.5, 0.4, -1.0, -1.5)]
UNIFORM_LOG = [_row(1, 0.6), _row(2, 0.4, 0.45)]


def test_curves_take_the_epochs_that_have_a_value_and_dans_derives_the_gap():
    assert _curve(DANS_LOG, "loss") == ([1, 2], [0.7, 0.5])
    assert _curve(DANS_LOG, "valid_mrr") == ([2], [0.4])
    assert _curve(DANS_LOG, "score_gap") == ([1, 2], [1.5, 0.5])
    assert _curve(UNIFORM_LOG, "score_gap") == ([], [])
    assert dans.NegativeSampler.diagnostics(DANS_LOG[0]) == {}


def test_training_curves_have_a_gap_panel_only_with_a_gan(tmp_path, png_size):
    training_curves({"dans": DANS_LOG, "uniform": UNIFORM_LOG}, "t", tmp_path / "both.png")
    training_curves({"uniform": UNIFORM_LOG}, "t", tmp_path / "uniform.png")
    width, three_panels = png_size(tmp_path / "both.png")
    assert width >= 1000
    assert three_panels == 960 and png_size(tmp_path / "uniform.png")[1] == 640


def test_cli_plot_overlays_runs(tmp_path, png_size, capsys):
    runs = []
    for sampler in ("uniform", "dans"):
        out = tmp_path / sampler
        config = dans.TrainConfig(sampler=sampler, encoder="lookup", dim=8, epochs=2, device="cpu")
        dans.train(config, out=out, progress=False)
        runs.append(str(out))
    assert main(["plot", *runs, "--out", str(tmp_path / "charts")]) == 0
    chart = tmp_path / "charts" / "curves.png"
    assert capsys.readouterr().out == f"chart: {chart}\n"
    assert png_size(chart)[1] == 960
    assert main(["plot", str(tmp_path / "nothing"), "--out", str(chart)]) == 2
