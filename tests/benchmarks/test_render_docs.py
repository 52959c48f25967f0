"""benchmarks/render_docs.py: every marked block of the docs is what the committed result files
give, and the headline's tests are the paper tables' own."""

import json

from scripts import load_script

from dans.experiments.results import GridRow, result_columns, results_csv

render_docs = load_script("render_docs")


def test_every_marked_block_is_rendered_from_the_committed_results():
    marked = 0
    for path in render_docs.documents():
        text = path.read_text()
        marked += len(render_docs.BLOCK.findall(text))
        assert render_docs.render(text) == text, (
            f"{path}: a marked block differs from the result files; run "
            "python benchmarks/render_docs.py"
        )
    assert (
        marked >= 1
        and "<!-- rendered: headline -->" in (render_docs.ROOT / "README.md").read_text()
    )


def test_a_block_is_replaced_whole_and_the_text_around_it_kept(tmp_path):
    table = tmp_path / "table.md"
    table.write_text("| a |\n|---|\n| 1 |\n")
    text = f"before\n<!-- rendered: file {table} -->\nstale\n<!-- /rendered -->\nafter\n"
    assert render_docs.render(text) == (
        f"before\n<!-- rendered: file {table} -->\n| a |\n|---|\n| 1 |\n<!-- /rendered -->\nafter\n"
    )


def test_the_headline_tests_are_the_paper_tables_tests():
    results = render_docs.RESULTS / "wn18rr_table"
    rows = render_docs.read_rows(results / "results.csv")
    ours = render_docs.holm_against_uniform(rows)
    cells = json.loads((results / "paper_table.json").read_text())["cells"]
    tested = [c for c in cells if c["p_holm_vs_uniform"] is not None]
    assert tested
    for cell in tested:
        assert abs(ours[cell["decoder"], cell["sampler"]] - cell["p_holm_vs_uniform"]) < 1e-12


def test_a_headline_cell_by_hand():
    assert render_docs._cell("uniform", {"uniform": 0.3951}, None) == ".395"
    assert render_docs._cell("mcns", {"mcns": 0.40612}, 0.1791) == "mcns .406 (p .179)"
    assert render_docs._cell("dans", {"dans": 0.2}, 0.0004) == ".200 (p <.001)"
    assert render_docs._cell("dans", {}, None) == "–"


def test_a_sweeps_results_render_a_row_per_setting(tmp_path):
    def row(value, seed, mrr):
        return GridRow(
            {"param": "lr,decoder", "value": value},
            seed,
            test={"mrr": mrr, "hits@1": mrr / 2},
            valid_mrr=mrr + 0.1,
            epochs=10,
            best_epoch=seed * 5,
            train_seconds=20.0,
        )

    rows = [row("0.01,distmult", 1, 0.4), row("0.01,distmult", 2, 0.6), row("0.1,rotate", 1, 0.3)]
    rows.append(GridRow({"param": "lr,decoder", "value": "0.1,rotate"}, 2, "diverged"))
    path = tmp_path / "results.csv"
    path.write_text(results_csv(rows, result_columns(("param", "value"))))
    assert render_docs.runs_table(path).splitlines() == [
        "| lr | decoder | seeds | valid_mrr | test_mrr | test_hits@1 | best_epoch | epochs "
        "| train_seconds |",
        "|---|---|---|---|---|---|---|---|---|",
        "| 0.01 | distmult | 2 | .600 ± .141 | .500 ± .141 | .250 ± .071 | 7.5 ± 3.5 | 10.0 ± 0.0 "
        "| 20.0 ± 0.0 |",
        "| 0.1 | rotate | 1 | .400 | .300 | .150 | 5 | 10 | 20 |",
    ]


def test_a_diversity_row_per_sampler_of_one_decoder(tmp_path):
    def row(sampler, decoder, seed, mrr, distance, rate):
        measures = dict.fromkeys(render_docs.DIVERSITY_COLUMNS, 0.5)
        measures |= {"mean_pairwise_distance": distance, "false_negative_rate": rate}
        return GridRow(
            {"sampler": sampler, "decoder": decoder}, seed, test={"mrr": mrr}, diversity=measures
        )

    rows = [
        row("uniform", "distmult", 1, 0.7, 8.0, 0.02),
        row("uniform", "distmult", 2, 0.8, 6.0, 0.04),
        row("dans", "rotate", 1, 0.9, 1.0, 0.5),
        row("dans", "distmult", 1, 0.6, 11.0, 0.01),
        GridRow({"sampler": "dans", "decoder": "distmult"}, 2, "diverged"),
        # Every entity a negative: nothing sampled to measure.
        GridRow({"sampler": "all-entities", "decoder": "distmult"}, 1, test={"mrr": 0.8}),
    ]
    path = tmp_path / "results.csv"
    path.write_text(results_csv(rows, result_columns(("sampler", "decoder"))))
    table = render_docs.block(["diversity", str(path), "distmult"]).splitlines()
    header = table[0].strip("| ").split(" | ")
    assert header == ["sampler", "seeds", "test MRR", *render_docs.DIVERSITY_COLUMNS]
    cells = {}
    for line in table[2:]:
        values = dict(zip(header, line.strip("| ").split(" | "), strict=True))
        cells[values["sampler"]] = values
    assert list(cells) == ["uniform", "dans"]
    # Seeds 1 and 2: means .750, 7.00 and .030, sample stds .071, sqrt(2) and sqrt(2) / 100.
    assert cells["uniform"]["seeds"] == "2"
    assert cells["uniform"]["test MRR"] == ".750 ± .071"
    assert cells["uniform"]["mean_pairwise_distance"] == "7.00 ± 1.41"
    assert cells["uniform"]["false_negative_rate"] == ".030 ± .014"
    # The diverged seed is not in the mean, the rotate run is another decoder's, and the run
    # without measures is left out.
    assert cells["dans"]["seeds"] == "1"
    assert cells["dans"]["test MRR"] == ".600"
    assert cells["dans"]["mean_pairwise_distance"] == "11.00"


def test_a_row_of_chosen_values_per_json_file(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"ratio": 0.123456, "dans": {"seconds": 2}}))
    (tmp_path / "a.json").write_text(json.dumps({"ratio": 0.5, "dans": {"seconds": 1.5}}))
    table = render_docs.block(["fields", str(tmp_path), "dans/seconds,ratio"])
    assert table.splitlines() == [
        "| file | dans/seconds | ratio |",
        "|---|---|---|",
        "| a | 1.5 | 0.5 |",
        "| b | 2 | 0.1235 |",
    ]


def test_a_budget_row_names_what_the_run_changed(tmp_path):
    run = {
        "recipe": "wn18rr-3m",
        "settings": {"sampler": "uniform", "encoder": "rgcn", "decoder": "distmult", "seed": 2}
        | {"layers": 1},
        "checkpoint_every": "1m",
        "time_budget_seconds": 180.0,
        "training_seconds": 165.6,
        "validation_seconds": 12.4,
        "writing_seconds": 1.74,
        "epochs": 132,
        "best_epoch": 80,
        "valid_mrr": 0.3795,
        "test_mrr": 0.3766,
        "target_test_mrr": 0.372,
        "reached": True,
    }
    (tmp_path / "run.json").write_text(json.dumps(run))
    rows = render_docs.budgets_table([tmp_path / "run.json"]).splitlines()
    assert rows[2] == (
        "| wn18rr-3m | layers 1, seed 2, checkpoint every 1m | 180 s | 166 s | 12 s | 1.7 s | 132 "
        "| 80 | .380 | .377 | .372 | yes |"
    )
