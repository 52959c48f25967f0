"""The `dans` command line: clean one-line errors that leave nothing behind, and the happy paths."""

import contextlib
import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dans
from dans.cli import command_parser, grid_of, main
from dans.cli.arguments import ROW_FORMATS, TABLE_FORMATS
from dans.cli.train import default_out
from dans.config import TrainConfig
from dans.errors import DansError, TrainingDiverged
from dans.training import Trainer

TRIPLES = [
    ("a", "r", "b"),
    ("b", "r", "c"),
    ("c", "s", "a"),
    ("a", "s", "d"),
    ("d", "r", "a"),
    ("b", "s", "d"),
]
pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--dim", "16", "--epochs", "1", "--quiet", "--device", "cpu"]


def write_splits(folder, train=None, valid=None, test=None):
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join("\t".join(t) + "\n" for t in TRIPLES).encode()
    for name, data in (("train", train), ("valid", valid), ("test", test)):
        if data is not False:
            (folder / f"{name}.txt").write_bytes(lines if data is None else data)
    return folder


def run_main(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(arg) for arg in argv])
    return code, out.getvalue()


def assert_one_line_error(capsys, argv, *needles):
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as usage_error:  # refused by the parser, before the command ran
        code = usage_error.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"dans {argv[0]}: error: ")
    assert "Traceback" not in captured.err
    for needle in needles:
        assert str(needle) in lines[0]
    return lines[0]


# ---------------------------------------------------------------- errors that leave nothing behind


def bad_data(tmp_path, **splits):
    folder = write_splits(tmp_path / "kg", **splits)
    return ["--data-dir", folder]


ERROR_CASES = {
    "wrong column count": (
        lambda p: bad_data(p, train=b"a\tr\tb\na\tr\n"),
        lambda p: [f"{p / 'kg' / 'train.txt'}:2:", "2 fields"],
    ),
    "non-utf8": (
        lambda p: bad_data(p, valid=b"a\tr\tb\n\xff\tr\tc\n"),
        lambda p: [f"{p / 'kg' / 'valid.txt'}:2:", "UTF-8"],
    ),
    "empty valid": (
        lambda p: bad_data(p, valid=b""),
        lambda p: [p / "kg" / "valid.txt", "empty"],
    ),
    "missing test": (
        lambda p: bad_data(p, test=False),
        lambda p: [p / "kg" / "test.txt", "not found"],
    ),
    "unknown dataset": (lambda p: ["--dataset", "nosuch"], lambda p: ["'nosuch'", "wn18rr"]),
    "missing data dir": (
        lambda p: ["--data-dir", p / "absent"],
        lambda p: [p / "absent", "no such directory"],
    ),
    "negative lr": (lambda p: ["--lr", "-1"], lambda p: ["--lr"]),
    "negative epochs": (lambda p: ["--epochs", "-5"], lambda p: ["--epochs", "-5"]),
    "zero batch": (lambda p: ["--batch-size", "0"], lambda p: ["--batch-size"]),
    "odd complex dim": (
        lambda p: ["--dim", "7", "--decoder", "complex"],
        lambda p: ["complex", "even", "7"],
    ),
    "unknown decoder": (lambda p: ["--decoder", "nosuch"], lambda p: ["'nosuch'", "distmult"]),
    "unknown sampler": (lambda p: ["--sampler", "nosuch"], lambda p: ["'nosuch'", "uniform"]),
    "bad dropout": (lambda p: ["--dropout", "1.0"], lambda p: ["--dropout"]),
    "bad ties": (lambda p: ["--ties", "random"], lambda p: ["--ties"]),
    "bad checkpoint cadence": (
        lambda p: ["--checkpoint-every", "soon"],
        lambda p: ["--checkpoint-every", "'soon'"],
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_train_error_exits_2_and_writes_nothing(tmp_path, capsys, case):
    extra, needles = ERROR_CASES[case]
    out = tmp_path / "run"
    # FAST comes first so that the case's own --dim/--epochs override it.
    argv = ["train", *FAST, *extra(tmp_path), "--out", out]
    assert_one_line_error(capsys, argv, *needles(tmp_path))
    assert not out.exists()


def test_cuda_without_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = tmp_path / "run"
    assert_one_line_error(capsys, ["train", *FAST, "--device", "cuda", "--out", out], "cuda")
    assert not out.exists()


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("dim = 16\nlearning_rate = 0.1\n", ["unknown key", "'learning_rate'"]),
        ('dim = "16"\n', ["dim must be int", "str"]),
        ("dropout = true\n", ["dropout must be float"]),
        ("dim = \n", []),
    ],
)
def test_bad_config_file(tmp_path, capsys, toml, needles):
    config = tmp_path / "my.toml"
    config.write_text(toml)
    out = tmp_path / "run"
    argv = ["train", "--config", config, "--quiet", "--out", out]
    assert_one_line_error(capsys, argv, f"{config}:", *needles)
    assert not out.exists()


def test_missing_config_file(tmp_path, capsys):
    config = tmp_path / "absent.toml"
    assert_one_line_error(capsys, ["train", "--config", config], config, "not found")


def test_existing_out_is_not_touched(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["train", *FAST, "--data-dir", write_splits(tmp_path / "kg"), "--out", out]
    assert_one_line_error(capsys, argv, out, "--overwrite")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("x")
    argv = ["train", *FAST, "--data-dir", write_splits(tmp_path / "kg"), "--out", out]
    assert_one_line_error(capsys, argv, out, "not a directory")
    assert out.read_text() == "x"


def test_evaluate_not_a_run(tmp_path, capsys):
    assert_one_line_error(capsys, ["evaluate", tmp_path / "nothing"], tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(capsys, ["evaluate", tmp_path / "empty"], "config.toml")


def subprocess_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def test_subprocess_error_is_one_line(tmp_path):
    folder = write_splits(tmp_path / "kg", train=b"a\tr\tb\na\tr\n")
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "dans", "train", "--data-dir", folder, "--out", out, *FAST],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert f"{folder / 'train.txt'}:2:" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_subprocess_help():
    result = subprocess.run(
        [sys.executable, "-m", "dans", "--help"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 0
    for command in ("train", "evaluate", "datasets"):
        assert command in result.stdout
    assert result.stderr == ""


def test_abbreviated_flags_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epoch", "1"])
    assert info.value.code == 2
    assert "--epoch" in capsys.readouterr().err


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--lr", "fast"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "--lr" in err


# ---------------------------------------------------------------- happy paths

RUN_ARGS = ["--epochs", "2", "--eval-every", "1", "--dim", "16", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code, stdout = run_main(["train", *RUN_ARGS, "--out", out])
    assert code == 0
    return out, stdout


def test_train_writes_the_run_directory(trained):
    out, stdout = trained
    assert sorted(p.name for p in out.iterdir()) == [
        ".dans.json",
        ".dans.lock",
        "checkpoint.pt",
        "config.toml",
        "entities.tsv",
        "log.csv",
        "metrics.json",
        "provenance.json",
        "relations.tsv",
    ]
    assert "umls" in stdout
    assert f"run written to {out}" in stdout


def test_metrics_json(trained):
    out, stdout = trained
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("valid", "test", "train_seconds", "eval_seconds", "epochs"):
        assert key in metrics
    assert metrics["dataset"] == "umls"
    assert (metrics["encoder"], metrics["decoder"], metrics["sampler"]) == (
        "rgcn",
        "distmult",
        "uniform",
    )
    assert metrics["seed"] == 1
    assert metrics["epochs"] == 2
    assert metrics["best_epoch"] in (1, 2)
    for split in ("valid", "test"):
        values = metrics[split]
        for key in ("mrr", "hits@1", "hits@3", "hits@10", "ndcg@5"):
            assert 0.0 < values[key] <= 1.0, (split, key)
        assert values["hits@1"] <= values["hits@3"] <= values["hits@10"]
        assert 1.0 <= values["mr"] <= 135
    assert metrics["train_seconds"] > 0 and metrics["eval_seconds"] > 0
    assert f"{metrics['test']['mrr']:.4f}" in stdout


def test_log_csv_has_a_row_per_epoch(trained):
    out, _ = trained
    with (out / "log.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["loss"]) > 0
        assert float(row["seconds"]) > 0
        assert 0 < float(row["valid_mrr"]) <= 1


def test_config_round_trips(trained):
    out, _ = trained
    expected = TrainConfig(epochs=2, eval_every=1, dim=16, device="cpu")
    assert TrainConfig.from_toml(out / "config.toml") == expected


def test_evaluate_json_matches_metrics(trained, capsys):
    out, _ = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--split", "test", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((out / "metrics.json").read_text())["test"]
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10", "ndcg@5"):
        assert printed[key] == pytest.approx(stored[key], abs=1e-9), key
    assert printed["queries"] == stored["queries"] == 2 * 661


def test_evaluate_by_relation_splits_the_queries_of_the_whole(trained, capsys):
    out, _ = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--by", "relation", "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    whole = json.loads((out / "metrics.json").read_text())["test"]
    assert sum(result["queries"] for result in found.values()) == whole["queries"]
    # The whole's MRR is the query-weighted mean of the relations'.
    pooled = sum(result["mrr"] * result["queries"] for result in found.values())
    assert pooled / whole["queries"] == pytest.approx(whole["mrr"], abs=1e-9)
    assert main(["evaluate", str(out), "--by", "relation"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["relation", "queries", "mrr"]
    assert len(lines) == 2 + len(found)


def test_tsv_holds_what_json_holds_in_evaluate_and_negatives(trained, dans_run, capsys):
    out, _ = trained
    capsys.readouterr()
    for by in ([], ["--by", "relation"]):
        assert main(["evaluate", str(out), *by, "--format", "json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert main(["evaluate", str(out), *by, "--format", "tsv"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out), delimiter="\t"))
        if by:
            assert [row["relation"] for row in rows] == list(found)
            pairs = [(row, found[row["relation"]]) for row in rows]
        else:
            assert [row["side"] for row in rows] == ["both", "head", "tail"]
            pairs = [(rows[0], found), (rows[1], found["head"]), (rows[2], found["tail"])]
        for row, expected in pairs:
            for key in ("mrr", "mr", "hits@1", "hits@10", "ndcg@5"):
                assert float(row[key]) == pytest.approx(expected[key], rel=1e-5), key
    query = ["negatives", str(dans_run), "--head", "body_part_organ_or_organ_component"]
    query += ["--relation", "location_of", "--k", "4"]
    assert main([*query, "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)["negatives"]
    assert main([*query, "--format", "tsv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out), delimiter="\t"))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    assert [row["entity"] for row in rows] == [row["entity"] for row in found]


def test_every_format_flag_takes_names_from_one_vocabulary():
    parser = command_parser()
    commands = parser._subparsers._group_actions[0].choices
    formats = {}
    for name, sub in commands.items():
        for action in sub._actions:
            if "--format" in action.option_strings and name != "export":
                formats[name] = tuple(action.choices)
    assert formats == {
        **dict.fromkeys(["evaluate", "negatives", "predict"], ROW_FORMATS),
        **dict.fromkeys(["compare", "ablate", "sweep"], TABLE_FORMATS),
    }


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "lots"])
def test_evaluate_refuses_bad_memory_bound(trained, capsys, value):
    out, _ = trained
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--eval-memory-mb", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "--eval-memory-mb" in err


def test_evaluate_memory_bound_gives_the_same_metrics(trained, capsys):
    out, _ = trained
    capsys.readouterr()
    results = []
    for megabytes in ("0.01", "64", "1e300"):  # 0.01 MB: 19 queries of 135 scores per block
        assert main(["evaluate", str(out), "--format", "json", "--eval-memory-mb", megabytes]) == 0
        results.append(json.loads(capsys.readouterr().out))
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10", "ndcg@5"):
        assert results[0][key] == results[1][key] == results[2][key], key


def test_evaluate_table(trained, capsys):
    out, _ = trained
    capsys.readouterr()
    assert main(["evaluate", str(out), "--split", "valid"]) == 0
    text = capsys.readouterr().out
    assert "umls valid" in text
    assert [line.split()[0] for line in text.splitlines()[2:]] == ["both", "head", "tail"]


def test_load_run(trained):
    out, _ = trained
    run = dans.load_run(out)
    assert run.config.model.dim == 16
    assert run.kg.name == "umls" and run.kg.num_entities == 135
    assert run.path == out
    run.model.train()  # inference is in eval mode and tracks no gradient, whatever the mode
    scores = run.model.score_hrt(run.kg.test[:5])
    assert scores.shape == (5,) and not scores.requires_grad
    assert torch.isfinite(scores).all()
    assert torch.equal(scores, run.model.score_hrt(run.kg.test[:5]))  # no dropout
    assert run.model.training
    assert run.metrics.to_dict() == json.loads((out / "metrics.json").read_text())


def test_overwrite_replaces_the_run_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    assert run_main(["train", *FAST, "--epochs", "0", "--out", out])[0] == 0
    (out / "notes.txt").write_text("mine")
    (out / "log.csv").write_text("the old run's")
    first = (out / "metrics.json").read_bytes()
    code, _ = run_main(["train", *FAST, "--epochs", "1", "--out", out, "--overwrite"])
    assert code == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "metrics.json").read_bytes() != first
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert "the old run's" not in (out / "log.csv").read_text()


def test_overwrite_refuses_a_folder_that_holds_no_run(tmp_path, capsys):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.toml").write_text("# the user's own\n")
    (out / "old.txt").write_text("old")
    argv = ["train", *FAST, "--epochs", "0", "--out", out, "--overwrite"]
    assert_one_line_error(capsys, argv, out, "not a dans run", "choose another --out")
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "old.txt"]


def test_datasets_lists_umls(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert lines[0].split()[:3] == ["name", "entities", "relations"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["umls"][1:3] == ["135", "46"]
    assert set(rows) == {"umls", "wn18rr", "fb15k-237", "nell-995", "yago3-10"} | {
        f"codex-{size}" for size in "sml"
    }
    assert rows["yago3-10"][1:6] == ["123,182", "37", "1,079,040", "5,000", "5,000"]


def test_zero_epochs_evaluates_the_untrained_model(tmp_path):
    out = tmp_path / "run"
    code, _ = run_main(["train", *FAST, "--epochs", "0", "--out", out])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 0
    assert metrics["best_epoch"] == 0
    assert 0 < metrics["test"]["mrr"] <= 1
    assert metrics["valid"]["mrr"] > 0
    assert (out / "checkpoint.pt").is_file()
    # The checkpoint is that untrained model: evaluating it reproduces the test metrics.
    run = dans.load_run(out)
    again = dans.evaluate(run.model, run.kg, split="test")
    assert again.mrr == pytest.approx(metrics["test"]["mrr"], abs=1e-9)


def test_config_file_sets_values_and_flags_override(tmp_path):
    folder = write_splits(tmp_path / "kg")
    config = tmp_path / "my.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(folder))}\n"
        'encoder = "lookup"\ndecoder = "complex"\ndim = 8\nlr = 0.01\nepochs = 1\nseed = 7\n'
    )
    out = tmp_path / "run"
    code, _ = run_main(
        ["train", "--config", config, "--dim", "16", "--seed", "3", "--quiet", "--out", out]
    )
    assert code == 0
    used = TrainConfig.from_toml(out / "config.toml")
    assert (used["encoder"], used["decoder"], used["lr"], used["epochs"]) == (
        "lookup",
        "complex",
        0.01,
        1,
    )
    assert (used.model.dim, used.runtime.seed) == (16, 3)
    assert used.data.data_dir == str(folder)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["encoder"], metrics["decoder"], metrics["seed"]) == ("lookup", "complex", 3)
    assert metrics["num_entities"] == 4


def test_data_dir_run_is_named_after_its_folder(tmp_path):
    folder = write_splits(tmp_path / "mykg")
    out = tmp_path / "run"
    code, _ = run_main(["train", *FAST, "--epochs", "0", "--data-dir", folder, "--out", out])
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["dataset"] == "mykg"


# ---------------------------------------------------------------- dans negatives


@pytest.fixture(scope="module")
def dans_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "dans-run"
    code, _ = run_main(["train", *RUN_ARGS, "--sampler", "dans", "--out", out])
    assert code == 0
    return out


QUERY = ["--relation", "location_of", "--k", "5", "--format", "json"]


@pytest.mark.parametrize("side", ["--head", "--tail"])
def test_negatives_are_real_unknown_and_hardest_first(dans_run, side):
    code, stdout = run_main(
        ["negatives", dans_run, side, "body_part_organ_or_organ_component", *QUERY]
    )
    assert code == 0
    found = json.loads(stdout)["negatives"]
    assert len(found) == 5
    run = dans.load_run(dans_run)
    kg = run.kg
    anchor = kg.entity_to_id["body_part_organ_or_organ_component"]
    relation = kg.relation_to_id["location_of"]
    ids = [kg.entity_to_id[row["entity"]] for row in found]
    assert len(set(ids)) == 5
    triples = torch.tensor(
        [(i, relation, anchor) if side == "--tail" else (anchor, relation, i) for i in ids]
    )
    # None completes a triple known in any split, and each score is the model's own.
    assert not kg.known_triples.contains(triples).any()
    with torch.no_grad():
        scores = run.model.score_hrt(triples)
    torch.testing.assert_close(scores, torch.tensor([row["score"] for row in found]))
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
    assert all(row["pathways"] in ("G_E", "G_R", "G_E+G_R") for row in found)


def test_negatives_table(dans_run):
    code, stdout = run_main(
        [
            "negatives",
            dans_run,
            "--head",
            "body_part_organ_or_organ_component",
            "--relation",
            "location_of",
            "--k",
            "3",
        ]
    )
    assert code == 0
    lines = stdout.splitlines()
    assert "(body_part_organ_or_organ_component, location_of, ?)" in lines[0]
    assert lines[1].split() == ["rank", "entity", "score", "distance", "pathways"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--head", "no_such_entity", "--relation", "location_of"], "unknown entity"),
        (
            ["--head", "body_part_organ_or_organ_component", "--relation", "nope"],
            "unknown relation",
        ),
    ],
)
def test_negatives_unknown_names(dans_run, capsys, args, needle):
    assert_one_line_error(capsys, ["negatives", dans_run, *args], needle)


def test_negatives_needs_a_dans_run(trained, capsys):
    out, _ = trained
    assert_one_line_error(
        capsys,
        ["negatives", out, "--head", "body_part_organ_or_organ_component", "--relation", "isa"],
        "--sampler dans",
    )


def test_negatives_needs_exactly_one_side(dans_run, capsys):
    with pytest.raises(SystemExit) as info:
        main(["negatives", str(dans_run), "--relation", "isa"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "--head" in err and "--tail" in err


def test_warnings_are_one_line_each(tmp_path, capsys):
    folder = tmp_path / "kg"
    folder.mkdir()
    (folder / "train.txt").write_text("a\tr\tb\nb\tr\tc\n")
    (folder / "valid.txt").write_text("a\tr\tz\n")
    (folder / "test.txt").write_text("a\tq\tb\n")
    argv = ["train", "--data-dir", str(folder), "--epochs", "0", "--encoder", "lookup"]
    assert main([*argv, "--dim", "4", "--device", "cpu", "--quiet", "--no-save"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"dans train: warning: {folder / 'valid.txt'}: 1 of 1 valid triples name entities or "
        "relations that train never does (1 entities, 0 relations); they are kept and ranked "
        "like the others",
        f"dans train: warning: {folder / 'test.txt'}: 1 of 1 test triples name entities or "
        "relations that train never does (0 entities, 1 relations); they are kept and ranked "
        "like the others",
        # Once the data is read and training begins.
        "dans train: --no-save, so nothing is kept",
    ]
    assert not (tmp_path / "runs").exists()


def test_without_out_a_run_goes_to_a_new_folder_under_runs(tmp_path, capsys):
    argv = ["train", "--epochs", "0", "--encoder", "lookup", "--dim", "4", "--quiet"]
    assert main(argv) == 0 and main(argv) == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2
    assert all(name.endswith(("-umls-uniform", "-umls-uniform-2")) for name in runs)
    err = capsys.readouterr().err
    assert f"dans train: writing the run to runs{os.sep}{runs[0]}" in err
    assert "dans train: training on cpu" in err  # --device auto says what it chose
    assert all((tmp_path / "runs" / name / "metrics.json").is_file() for name in runs)


def test_default_out_numbers_a_folder_whose_name_is_taken(tmp_path):
    config = dans.TrainConfig(sampler="dans")
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    first = default_out(config, now)
    assert first == Path("runs/20260102-030405-umls-dans")
    first.mkdir(parents=True)
    assert default_out(config, now) == Path("runs/20260102-030405-umls-dans-2")


def test_an_error_naming_a_path_with_a_line_break_stays_on_one_line(tmp_path, capsys):
    folder = tmp_path / "two\nlines"
    assert main(["train", "--data-dir", str(folder), "--epochs", "0", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "two\\nlines" in err


def test_evaluate_refuses_a_changed_checkpoint(trained, tmp_path, capsys):
    out, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    data = bytearray((copy / "checkpoint.pt").read_bytes())
    data[len(data) // 2] ^= 0x10
    (copy / "checkpoint.pt").write_bytes(bytes(data))
    message = f"{copy / 'checkpoint.pt'}: damaged or changed since it was written"
    assert_one_line_error(capsys, ["evaluate", copy], message)


def test_evaluate_refuses_a_checkpoint_of_another_config(trained, tmp_path, capsys):
    out, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    config = (copy / "config.toml").read_text()
    (copy / "config.toml").write_text(config.replace("dim = 16", "dim = 20"))
    message = f"{copy / 'checkpoint.pt'}: does not fit its config.toml"
    assert_one_line_error(capsys, ["evaluate", copy], message)


def test_the_command_line_loads_no_chart_or_statistics_library_until_a_command_needs_it():
    # They cost more start-up than torch itself: `dans --help` and `dans datasets` skip them.
    check = (
        "import sys, dans.cli; "
        "print(sorted(m for m in ('matplotlib', 'scipy', 'sklearn') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_every_device_flag_defaults_to_auto_and_registered_names_are_the_choices():
    from dans.cli import build_parser

    _, parsers = build_parser()
    devices = {
        name: action.default
        for name, parser in parsers.items()
        for action in parser._actions
        if "--device" in action.option_strings
    }
    # A settings flag stays None when unset, so the configuration's default applies.
    effective = {default or dans.TrainConfig().runtime.device for default in devices.values()}
    assert len(devices) >= 8 and effective == {"auto"}
    choices = {
        action.dest: action.choices
        for action in parsers["train"]._actions
        if action.dest in ("sampler", "decoder", "encoder", "ties")
    }
    assert choices["sampler"] == sorted(
        [*dans.SAMPLERS.names(), "dans-authors", "dans-authors-code"]
    )
    assert choices["decoder"] == dans.DECODERS.names()
    assert choices["ties"] == ("realistic", "optimistic", "pessimistic")


def test_evaluate_says_which_epoch_of_an_unfinished_run_it_ranks(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--encoder", "lookup", "--dim", "4", "--epochs", "2", "--eval-every", "1"]
    assert main([*argv, "--patience", "0", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    best = json.loads((out / "metrics.json").read_text())["best_epoch"]
    (out / "metrics.json").unlink()  # as if killed before its end
    capsys.readouterr()
    assert run_main(["evaluate", out, "--device", "cpu"])[0] == 0
    assert capsys.readouterr().err == (
        f"dans evaluate: warning: {out} did not finish: evaluating its best checkpoint so far, "
        f"from epoch {best}; `dans train --resume {out}` finishes it\n"
    )


def test_exit_codes_two_for_bad_input_one_for_a_run_that_fails(tmp_path, monkeypatch, capsys):
    argv = ["train", "--encoder", "lookup", "--dim", "4", "--epochs", "1", "--quiet", "--no-save"]
    with pytest.raises(SystemExit) as usage:
        main([*argv, "--no-such-flag"])
    assert usage.value.code == 2
    assert main([*argv, "--data-dir", str(tmp_path / "absent")]) == 2

    def diverging(self, sampler):
        raise TrainingDiverged("training diverged: 20 steps in a row had a non-finite loss")

    monkeypatch.setattr(Trainer, "train_epoch", diverging)
    assert main(argv) == 1
    assert "dans train: error: training diverged" in capsys.readouterr().err


def test_old_spellings_work_for_one_release_with_a_deprecation_line(trained, capsys):
    out, _ = trained
    capsys.readouterr()
    code, stdout = run_main(["evaluate", out, "--json", "--memory-mb", "8", "--device", "cpu"])
    assert code == 0 and "mrr" in json.loads(stdout)
    assert capsys.readouterr().err.splitlines() == [
        "dans evaluate: warning: --json is deprecated: use --format json",
        "dans evaluate: warning: --memory-mb is deprecated: use --eval-memory-mb",
    ]


def test_renamed_settings_are_read_under_their_old_flags_and_keys_with_a_warning(tmp_path, capsys):
    settings = tmp_path / "settings.toml"
    settings.write_text("cake_temperature = 0.5\n")
    argv = ["train", "--encoder", "lookup", "--dim", "4", "--epochs", "1", "--quiet"]
    argv += ["--sampler", "self-adv", "--adversarial-temperature", "2", "--dans-fake-per-side"]
    argv += ["--config", settings, "--out", tmp_path / "run", "--device", "cpu"]
    code, _ = run_main(argv)
    assert code == 0
    written = (tmp_path / "run" / "config.toml").read_text().splitlines()
    assert {"self_adv_alpha = 2.0", "cake_alpha = 0.5", "dans_fake_per_condition = true"} <= set(
        written
    )
    assert not any("temperature" in line and "cake" in line for line in written)
    assert capsys.readouterr().err.splitlines()[:3] == [
        "dans train: warning: --adversarial-temperature is deprecated: use --self-adv-alpha",
        "dans train: warning: --dans-fake-per-side is deprecated: use --dans-fake-per-condition",
        f"dans train: warning: {settings}: cake_temperature is now called cake_alpha; the old "
        "name is read for one release",
    ]
    code, _ = run_main([*argv[:-4], "--no-dans-fake-per-side", "--out", tmp_path / "off"])
    assert "dans_fake_per_condition = false" in (tmp_path / "off" / "config.toml").read_text()


def test_ctrl_c_exits_130_and_a_closed_pipe_exits_141_quietly(trained, tmp_path, monkeypatch):
    out, _ = trained

    def interrupted(self, sampler):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    argv = ["train", "--encoder", "lookup", "--dim", "4", "--epochs", "1", "--quiet", "--no-save"]
    assert main(argv) == 130
    # A reader that went away before the output came: the first write finds the pipe closed.
    run = dans.load_run(out)
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{h}\tlocation_of\t?\n" for h in run.kg.entity_names))
    command = [sys.executable, "-m", "dans", "predict", str(out), "--queries", str(queries)]
    reader = subprocess.Popen(
        [*command, "--format", "tsv", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader.stdout.close()
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == b""


def test_a_sampled_evaluation_is_named_wherever_its_figures_appear(trained, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--encoder", "lookup", "--dim", "8", "--epochs", "2", "--quiet"]
    code, stdout = run_main([*argv, "--eval-candidates", "30", "--out", out, "--device", "cpu"])
    assert code == 0
    said = "[sampled: each query against 30 random entities]"
    lines = stdout.splitlines()
    assert any("best valid MRR" in line and line.endswith(said) for line in lines)
    assert any(
        line.startswith("test (realistic ranks, filtered):") and said in line for line in lines
    )
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["valid"]["sampled_candidates"] == stored["test"]["sampled_candidates"] == 30
    # dans evaluate ranks against every entity unless asked, and says which it did.
    full, _ = trained
    capsys.readouterr()
    code, stdout = run_main(["evaluate", full, "--eval-candidates", "10", "--device", "cpu"])
    assert code == 0 and "[sampled: each query against 10 random entities]" in stdout
    code, stdout = run_main(["evaluate", full, "--device", "cpu"])
    assert code == 0 and "sampled" not in stdout


def test_a_grid_command_builds_the_grid_it_trains_without_writing(tmp_path):
    out = tmp_path / "grid"
    argv = ["compare", "--samplers", "uniform,dans", "--decoders", "distmult", "--seeds", "2"]
    argv += [*FAST, "--out", str(out)]
    args, grid = grid_of(argv)
    assert args.out == out and not out.exists()
    assert [run.name for run in grid.runs] == [
        "uniform-distmult-seed1",
        "uniform-distmult-seed2",
        "dans-distmult-seed1",
        "dans-distmult-seed2",
    ]
    # The same grid as `dans compare` trains: its rows are the grid's runs.
    assert main(argv) == 0
    with open(out / "results.csv") as f:
        rows = [(row["sampler"], row["seed"]) for row in csv.DictReader(f)]
    assert rows == [(run.key["sampler"], str(run.config.runtime.seed)) for run in grid.runs]
    with pytest.raises(DansError, match="dans train trains no grid"):
        grid_of(["train", *FAST])
