"""The charts: PNG files at least 800 px wide, written whole."""

from dans.experiments.plots import bar_chart, line_chart, scatter_chart


def test_bar_chart(tmp_path, png_size):
    path = tmp_path / "bars.png"
    bar_chart(["a", "b"], [0.5, 0.6], [0.01, 0.0], "title", "variant", "MRR", path)
    width, height = png_size(path)
    assert width >= 800 and height > 0


def test_line_chart_on_a_log_axis(tmp_path, png_size):
    path = tmp_path / "line.png"
    line_chart([1e-6, 1e-4, 1e-2], [0.5, 0.6, 0.55], [0.01] * 3, "t", "x", "y", path, True)
    assert png_size(path)[0] >= 800


def test_scatter_chart_and_no_temporary_left(tmp_path, png_size):
    path = tmp_path / "points.png"
    scatter_chart({"positive": ([0.0, 1.0], [1.0, 0.0]), "uniform": ([2.0], [2.0])}, "t", path)
    assert png_size(path)[0] >= 800
    assert [p.name for p in tmp_path.iterdir()] == ["points.png"]
