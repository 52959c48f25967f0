"""Grid tables: mean ± std per group, best bold, runner-up underlined, diverged runs counted."""

from dans.experiments.results import GridRow
from dans.experiments.tables import (
    by_seed,
    latex_table,
    mean_std_text,
    metric_series,
    summary_table,
    three,
)


def _row(variant, seed, mrr, status="ok"):
    if status != "ok":
        return GridRow({"variant": variant}, seed, status)
    test = {"mrr": mrr, "hits@1": mrr / 2, "ndcg@5": mrr}
    return GridRow({"variant": variant}, seed, dataset="toy", test=test)


ROWS = [
    _row("a", 1, 0.50),
    _row("a", 2, 0.70),
    _row("b", 1, 0.40),
    _row("b", 2, 0.40),
    _row("c", 1, 0.65),
    _row("c", 2, 0, status="diverged"),
    _row("d", 1, 0, status="diverged"),
]


def test_summary_table():
    lines = summary_table(ROWS, "variant", "Title").splitlines()
    assert lines[0] == "Title (filtered, realistic ranks)."
    assert lines[2] == "| variant | seeds | MRR | H@1 | NDCG@5 |"
    # Means: a .600 (std .141), b .400, c .650 (one seed): c best, a second.
    assert lines[4] == "| a | 2 | <u>.600 ± .141</u> | <u>.300 ± .071</u> | <u>.600 ± .141</u> |"
    assert lines[5] == "| b | 2 | .400 ± .000 | .200 ± .000 | .400 ± .000 |"
    # One seed has no spread to print.
    assert lines[6] == "| c | 1 (+1 diverged) | **.650** | **.325** | **.650** |"
    assert lines[7] == "| d | 0 (+1 diverged) | – | – | – |"


def test_mean_std_text_gives_a_single_value_no_spread():
    # Sample std of .5 and .7: sqrt(2 * .1^2 / 1) = .1414.
    assert mean_std_text([0.5, 0.7]) == ".600 ± .141"
    assert mean_std_text([0.724]) == ".724"


def test_metric_series_skips_groups_without_finished_runs():
    series = metric_series(by_seed(ROWS, "variant"), "mrr")
    assert [label for label, _, _ in series] == ["a", "b", "c"]
    assert series[0][1] == 0.6 and abs(series[0][2] - 0.1414213) < 1e-6


def test_three():
    assert three(0.7246) == ".725" and three(0.7244) == ".724"
    assert three(0.0) == ".000" and three(1.5) == "1.500"


def test_latex_table_by_hand():
    markdown = (
        "Test metrics on umls (filtered, realistic ranks).\n"
        "\n"
        "| sampler | seeds | MRR | p |\n"
        "|---|---|---|---|\n"
        "| **DistMult** | | | |\n"
        "| self_adv | 5 | **.744 ± .010** | <.001 |\n"
        "| dans | 5 (+1 diverged) | <u>.727 ± .014</u> | – |\n"
    )
    assert latex_table(markdown) == (
        "% Test metrics on umls (filtered, realistic ranks).\n"
        "\\begin{tabular}{lrrr}\n"
        "\\toprule\n"
        "sampler & seeds & MRR & p \\\\\n"
        "\\midrule\n"
        "\\textbf{DistMult} &  &  &  \\\\\n"
        "self\\_adv & 5 & \\textbf{.744 $\\pm$ .010} & $<$.001 \\\\\n"
        "dans & 5 (+1 diverged) & \\underline{.727 $\\pm$ .014} & -- \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
    )
