"""benchmarks/figure2.py: each graph's panel from its grid's results.csv, against hand-worked
means, and the figure drawn from the committed results."""

from pathlib import Path

import pytest
from scripts import load_script

from dans.experiments.results import GridRow, result_columns, results_csv

figure2 = load_script("figure2")


def _write(folder: Path, key_columns, rows):
    folder.mkdir(parents=True)
    (folder / "results.csv").write_text(results_csv(rows, result_columns(key_columns)))


def _row(key, seed, mrr, status="ok"):
    return GridRow(key=key, seed=seed, status=status, test={"mrr": mrr} if status == "ok" else {})


def test_a_graph_panel_averages_its_seeds_and_sorts_swept_values(tmp_path):
    G_R = {"variant": "G_R"}
    _write(
        tmp_path / "umls_ablation",
        ("variant",),
        [_row(G_R, 1, 0.6), _row(G_R, 2, 0.8), _row({"variant": "DANS"}, 1, 0.5)],
    )
    lam = [{"param": "lambda", "value": v} for v in ("0.01", "1e-06", "0.0001")]
    _write(
        tmp_path / "wn18rr_sweep_lambda",
        ("param", "value"),
        [_row(lam[0], 1, 0.3), _row(lam[1], 1, 0.1), _row(lam[2], 1, 0.2, "diverged")],
    )
    umls, wn18rr, nell = figure2.charts(tmp_path, "ablation", "variant", False)
    assert umls.title == "UMLS (1–2 seeds)"
    assert [label for label, _, _ in umls.points] == ["G_R", "DANS"]
    assert umls.points[0][1:] == pytest.approx((0.7, 0.1414), abs=1e-4)
    assert wn18rr.title == "WN18RR" and wn18rr.points == [] and nell.points == []
    _, wn18rr, _ = figure2.charts(tmp_path, "sweep_lambda", "value", True)
    # The diverged run leaves no point; the others go in ascending order of lambda.
    assert wn18rr.title == "WN18RR (1 seed)" and wn18rr.log_x
    assert [(x, mean) for x, mean, _ in wn18rr.points] == [(1e-6, 0.1), (0.01, 0.3)]


def test_the_figure_draws_from_the_committed_results(tmp_path, monkeypatch, png_size):
    out = tmp_path / "figure2.png"
    monkeypatch.setattr("sys.argv", ["figure2.py", "--out", str(out)])
    figure2.main()
    assert png_size(out) == (1500, 1200)
