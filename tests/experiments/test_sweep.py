"""`dans sweep`: which settings can be swept, how values are read, the runs and their files."""

import pytest

import dans
from dans.cli import main
from dans.errors import DansError
from dans.experiments.grids import GridOptions
from dans.experiments.results import read_rows
from dans.experiments.sweep import sweep, sweep_grid, sweep_key, sweep_values, value_label

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"encoder": "lookup", "dim": 8, "epochs": 1, "device": "cpu", "eval_every": 1}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("negatives", "negatives"),
        ("--negatives", "negatives"),
        ("n_negatives", "negatives"),
        ("lambda", "dans_film_lambda"),
        ("dans-film-lambda", "dans_film_lambda"),
        ("lr", "lr"),
    ],
)
def test_sweep_key(name, key):
    assert sweep_key(name) == key


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("seed", "seed is not swept; use --seeds"),
        ("device", "device is not swept"),
        ("nope", "'nope' is not a setting of `dans train`"),
    ],
)
def test_sweep_key_refuses_the_seed_the_device_and_what_is_not_a_setting(name, message):
    with pytest.raises(DansError, match=message):
        sweep_key(name)


def test_sweep_values_take_the_setting_type():
    assert sweep_values("negatives", ["1", "5", "20"]) == [1, 5, 20]
    assert sweep_values("dans_film_lambda", ["1e-2", "0.0001"]) == [0.01, 0.0001]
    assert sweep_values("dans_film", ["true", "false"]) == [True, False]
    assert sweep_values("decoder", ["distmult", "rotate"]) == ["distmult", "rotate"]
    with pytest.raises(DansError, match="'yes' is not true or false"):
        sweep_values("dans_film", ["yes"])
    with pytest.raises(DansError, match="cannot name a run's folder"):
        sweep_values("data_dir", ["graphs/mine"])
    for bad, message in [("2.5", "not an int"), ("x", "not an int")]:
        with pytest.raises(DansError, match=message):
            sweep_values("negatives", [bad])
    for bad in ["nan", "inf", "x"]:
        with pytest.raises(DansError, match="not a finite number"):
            sweep_values("lr", [bad])
    with pytest.raises(DansError, match="twice"):
        sweep_values("negatives", ["5", "05"])


def test_value_labels_are_exact():
    assert [value_label(v) for v in (20, 1e-05, 0.0001, 0.01)] == ["20", "1e-05", "0.0001", "0.01"]
    assert [value_label(v) for v in (True, False, "snap")] == ["true", "false", "snap"]
    assert value_label(0.1234567) != value_label(0.1234568)


def test_sweep_refuses_another_samplers_setting(tmp_path):
    config = dans.TrainConfig(**FAST, sampler="uniform")
    with pytest.raises(DansError, match="setting of the dans sampler"):
        sweep(config, "lambda", ["1e-2"], 1, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_sweep_trains_each_value_and_seed(tmp_path, umls, png_size):
    out = tmp_path / "sweep"
    config = dans.TrainConfig(**FAST, sampler="dans")
    rows = sweep(config, "n_negatives", ["4", "2"], 2, out, GridOptions(False, lambda _: None))
    assert [(r.key["param"], r.key["value"], r.seed) for r in rows] == [
        ("negatives", "4", 1),
        ("negatives", "4", 2),
        ("negatives", "2", 1),
        ("negatives", "2", 2),
    ]
    for row in rows:
        run = out / "runs" / f"negatives={row.key['value']}-seed{row.seed}"
        stored = dans.TrainConfig.from_toml(run / "config.toml")
        assert (stored["negatives"], stored["seed"]) == (int(row.key["value"]), row.seed)
    assert read_rows(out / "results.csv") == rows
    table = (out / "table.md").read_text()
    assert "| 4 | 2 |" in table and "| 2 | 2 |" in table
    assert png_size(out / "sweep.png")[0] >= 800


def test_cli_sweep_defaults_to_dans(tmp_path, capsys, umls):
    out = tmp_path / "sweep"
    argv = ["sweep", "--param", "lambda", "--values", "1e-2,1e-6", "--seeds", "1"]
    argv += ["--out", str(out), "--quiet", "--encoder", "lookup", "--dim", "8", "--epochs", "1"]
    assert main([*argv, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "swept with dans" in printed and "| 1e-06 | 1 |" in printed
    stored = dans.TrainConfig.from_toml(
        out / "runs" / "dans_film_lambda=1e-06-seed1" / "config.toml"
    )
    assert stored["sampler"] == "dans" and stored["dans_film_lambda"] == 1e-6


def test_cli_sweep_bad_value_is_one_line(tmp_path, capsys):
    assert (
        main(["sweep", "--param", "negatives", "--values", "0", "--out", str(tmp_path / "s")]) == 2
    )
    err = capsys.readouterr().err
    assert err == "dans sweep: error: --negatives must be at least 1, got 0\n"
    assert not (tmp_path / "s").exists()


def test_a_sweep_of_several_settings_trains_every_combination(tmp_path, umls):
    out = tmp_path / "grid"
    config = dans.TrainConfig(**FAST, sampler="uniform")
    settings = {"lr": ["0.01", "0.003"], "decoder": ["distmult", "transe"]}
    rows = sweep_grid(config, settings, [2], out, GridOptions(False, lambda _: None))
    assert [(r.key["param"], r.key["value"], r.seed) for r in rows] == [
        ("lr,decoder", "0.01,distmult", 2),
        ("lr,decoder", "0.01,transe", 2),
        ("lr,decoder", "0.003,distmult", 2),
        ("lr,decoder", "0.003,transe", 2),
    ]
    stored = dans.TrainConfig.from_toml(
        out / "runs" / "lr=0.003,decoder=transe-seed2" / "config.toml"
    )
    assert (stored["lr"], stored["decoder"], stored["seed"]) == (0.003, "transe", 2)
    assert "| 0.003,transe | 1 |" in (out / "table.md").read_text()
    assert not (out / "sweep.png").exists()  # a chart is drawn for one numeric setting


def test_a_sweep_refuses_a_setting_named_twice_and_a_component_setting_unused(tmp_path):
    config = dans.TrainConfig(**FAST, sampler="uniform")
    with pytest.raises(DansError, match="named twice"):
        sweep_grid(config, {"lr": ["0.1"], "--lr": ["0.2"]}, 1, tmp_path / "a")
    with pytest.raises(DansError, match="setting of the rgcn encoder, but the runs use --encoder"):
        sweep_grid(config, {"edge_dropout": ["0.1"]}, 1, tmp_path / "b")
    # Sweeping the encoder too, its settings are used by some of the runs.
    assert sweep_key("edge-dropout") == "edge_dropout"


def test_cli_sweep_takes_a_values_for_each_param(tmp_path, capsys):
    argv = ["sweep", "--param", "lr", "--values", "0.1", "--param", "l2", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main(argv)
    assert "give each --param its own --values" in capsys.readouterr().err
