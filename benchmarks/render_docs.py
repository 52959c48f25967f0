"""Render every marked block of README.md and docs/ from the committed result files.

    python benchmarks/render_docs.py            # rewrite the blocks
    python benchmarks/render_docs.py --check    # list the blocks that differ, exit 1 if any

A block is the text between ``<!-- rendered: NAME ARGS -->`` and ``<!-- /rendered -->``:

- ``headline``: per graph and decoder, test MRR of uniform negatives, of the best other
  baseline, of DANS and of the paper's DANS, with Holm-corrected paired t-tests against
  uniform (:data:`HEADLINE_SOURCES` names each graph's results);
- ``file PATH``: a committed table (a grid's ``table.md``, ``paper_table.md``) as its command
  wrote it;
- ``options SAMPLER``: the sampler's own settings, each with its flag, default and help, from
  its options class;
- ``sampler SAMPLER``: the sampler's test MRR on every graph and decoder it ran, and its epoch
  time against uniform's in the same grid;
- ``runs PATH``: a `dans sweep` results.csv, or a settings grid's JSON as the script that
  `dans sweep` replaced wrote it (``runs`` of settings and outcomes), a row per setting, mean ±
  std over its seeds;
- ``metrics PATH ...``: a row per run's ``metrics.json`` (a path may hold ``*``);
- ``json PATH``: any other benchmark's JSON, a row per value;
- ``fields FOLDER KEY,...``: a row per JSON file in the folder (by name), those values of it
  (a key nested in another is written ``outer/inner``);
- ``diversity PATH DECODER``: per sampler of a grid's ``results.csv``, the test MRR and the
  measures of its negatives (``dans compare --diversity``) of its runs with that decoder, mean ±
  std over seeds;
- ``budgets FOLDER``: a row per ``benchmarks/time_budget.py`` JSON in the folder;
- ``pending``: the runs the paper's grids still have to train and their hours
  (``benchmarks/pending.py``);
- ``commands PART``: the commands of those grids in one part of the plan (table, figure2 or
  rest), the very commands whose runs ``pending`` counts.

No figure in a marked block is typed by hand: a new run updates the result files, and this
script the docs.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from dans.experiments import paper
from dans.experiments.diversity import DIVERSITY_COLUMNS
from dans.experiments.results import GridRow, read_rows
from dans.experiments.sweep import JOIN
from dans.experiments.tables import by_seed, holm, mean_std, mean_std_text, mrr_p_value, three
from dans.options import flag_name
from dans.pipeline import CHECKPOINT_EVERY
from dans.samplers import SAMPLERS
from pending import commands, current_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(
    r"(<!-- rendered: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /rendered -->)", re.DOTALL
)
# Each graph's results.csv behind the headline, and the dataset name the paper's values use.
HEADLINE_SOURCES = (
    ("UMLS", "umls", "umls_table"),
    ("WN18RR", "wn18rr", "wn18rr_table"),
    ("NELL-995", "nell-995", "nell_table"),
)
# Not baselines: the DANS variants, and the 1-vs-all reference that every sampler approaches.
NOT_BASELINES = ("dans", "dans-authors", "dans-authors-code", "all-entities")


def documents() -> list[Path]:
    """The Markdown files whose marked blocks are rendered."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render(text: str) -> str:
    """``text`` with each marked block rendered anew."""
    return BLOCK.sub(lambda m: m[1] + block(m["spec"].split()) + m[4], text)


def block(spec: list[str]) -> str:
    name, args = spec[0], spec[1:]
    if name == "headline":
        return headline()
    if name == "file":
        return (ROOT / args[0]).read_text()
    if name == "options":
        return options_table(args[0])
    if name == "sampler":
        return sampler_figures(args[0])
    if name == "runs":
        return runs_table(ROOT / args[0])
    if name == "metrics":
        return metrics_table(args)
    if name == "json":
        return json_table(ROOT / args[0])
    if name == "fields":
        return fields_table(sorted((ROOT / args[0]).glob("*.json")), args[1].split(","))
    if name == "diversity":
        return diversity_table(ROOT / args[0], args[1])
    if name == "budgets":
        return budgets_table(sorted((ROOT / args[0]).glob("*.json")))
    if name == "pending":
        return current_table()
    if name == "commands":
        return commands(args[0])
    raise ValueError(f"unknown rendered block {name!r}")


def headline() -> str:
    """The headline table: a row per graph and decoder with complete cells."""
    published = paper.published()["values"]
    lines = [
        "| graph | decoder | seeds | uniform | best other baseline | DANS | paper's DANS "
        "| every entity (1-vs-all) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for graph, dataset, folder in HEADLINE_SOURCES:
        rows = [r for r in read_rows(RESULTS / folder / "results.csv") if r.finished]
        complete = max(len(runs) for runs in by_seed(rows, "sampler").values())
        p_values = holm_against_uniform(rows)
        for decoder in dict.fromkeys(row.key["decoder"] for row in rows):
            groups = {
                sampler: runs
                for sampler, runs in by_seed(
                    [r for r in rows if r.key["decoder"] == decoder], "sampler"
                ).items()
                if len(runs) == complete
            }
            if "uniform" not in groups:
                continue
            means = {
                s: mean_std([r.test["mrr"] for r in runs.values()])[0] for s, runs in groups.items()
            }
            others = [s for s in groups if s != "uniform" and s not in NOT_BASELINES]
            best = max(others, key=means.__getitem__) if others else None
            paper_dans = published.get(dataset, {}).get(decoder, {}).get("dans", {}).get("mrr")
            lines.append(
                f"| {graph} | {paper.DECODER_TITLES.get(decoder, decoder)} | {complete} | "
                + " | ".join(
                    _cell(sampler, means, p_values.get((decoder, sampler)))
                    for sampler in ("uniform", best, "dans")
                )
                + f" | {'–' if paper_dans is None else three(paper_dans[0])} | "
                + _cell("all-entities", means, p_values.get((decoder, "all-entities")))
                + " |"
            )
    return "\n".join(lines) + "\n"


def options_table(sampler: str) -> str:
    """The settings a sampler owns: flag, default, help."""
    options = SAMPLERS.get(sampler).options_type
    if options is None:
        return "This sampler has no settings of its own.\n"
    lines = ["| flag | default | what it sets |", "|---|---|---|"]
    for key, spec in options.specs().items():
        help_text = spec.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{flag_name(key)}` | `{spec.default!r}` | {help_text} |")
    return "\n".join(lines) + "\n"


def sampler_figures(sampler: str) -> str:
    """A sampler's test MRR (mean ± std over seeds) per graph and decoder in the headline's
    grids, and its median seconds of training per epoch as a multiple of uniform's there (where
    both trained on the same device)."""
    lines = [
        "| graph | decoder | seeds | test MRR | uniform | epoch time / uniform's |",
        "|---|---|---|---|---|---|",
    ]
    for graph, _, folder in HEADLINE_SOURCES:
        rows = [r for r in read_rows(RESULTS / folder / "results.csv") if r.finished]
        for decoder in dict.fromkeys(row.key["decoder"] for row in rows):
            groups = by_seed([r for r in rows if r.key["decoder"] == decoder], "sampler")
            if sampler not in groups or "uniform" not in groups:
                continue
            mrr, base = (
                mean_std_text([r.test["mrr"] for r in groups[name].values()])
                for name in (sampler, "uniform")
            )
            devices = [
                {r.device or "?" for r in groups[name].values()} for name in (sampler, "uniform")
            ]
            ratio = (
                f"{_epoch_seconds(groups[sampler]) / _epoch_seconds(groups['uniform']):.2f}x"
                if len(devices[0] | devices[1]) == 1
                else "– (" + " against ".join("/".join(sorted(d)) for d in devices) + ")"
            )
            lines.append(
                f"| {graph} | {paper.DECODER_TITLES.get(decoder, decoder)} | "
                f"{len(groups[sampler])} | {mrr} | {base} | {ratio} |"
            )
    if len(lines) == 2:
        return "No grid with this sampler is committed yet.\n"
    return "\n".join(lines) + "\n"


# What a settings grid's JSON reports of each run, in this order, where present.
OUTCOMES = ("valid_mrr", "test_mrr", "test_hits@1", "best_epoch", "epochs", "train_seconds")


def runs_table(path: Path) -> str:
    """A settings grid's runs: a row per setting (its grid keys but the seed), each outcome's
    mean ± std over the setting's seeds."""
    keys, runs, fixed = _sweep_runs(path) if path.suffix == ".csv" else _grid_runs(path)
    outcomes = [key for key in OUTCOMES if any(key in run for run in runs)]
    settings: dict[tuple[str, ...], list[dict]] = {}
    for run in runs:
        settings.setdefault(tuple(str(run[key]) for key in keys), []).append(run)
    lines = [
        "| " + " | ".join([*keys, "seeds", *outcomes]) + " |",
        "|" + "---|" * (len(keys) + 1 + len(outcomes)),
    ]
    for setting, these in settings.items():
        cells = [_mean_text([float(run[key]) for run in these if key in run]) for key in outcomes]
        lines.append("| " + " | ".join([*setting, str(len(these)), *cells]) + " |")
    text = ", ".join(f"{key} {value}" for key, value in fixed.items())
    return "\n".join(lines) + (f"\n\nFixed: {text}.\n" if text else "\n")


def _grid_runs(path: Path) -> tuple[list[str], list[dict], dict]:
    """The swept keys, the runs and the fixed settings of a settings grid's JSON, as the
    settings-grid script that `dans sweep` replaced recorded them."""
    record = json.loads(path.read_text())
    return [key for key in record["grid"] if key != "seed"], record["runs"], record.get("fixed", {})


def _sweep_runs(path: Path) -> tuple[list[str], list[dict], dict]:
    """The swept keys and the finished runs of a `dans sweep` results.csv, each run's outcomes
    named as :func:`_grid_runs` names them."""
    rows = [row for row in read_rows(path) if row.finished]
    keys = rows[0].key["param"].split(JOIN) if rows else []
    runs = [
        {
            **dict(zip(keys, row.key["value"].split(JOIN), strict=True)),
            "valid_mrr": row.valid_mrr,
            "test_mrr": row.test["mrr"],
            "test_hits@1": row.test["hits@1"],
            "best_epoch": row.best_epoch,
            "epochs": row.epochs,
            "train_seconds": row.train_seconds,
        }
        for row in rows
    ]
    return keys, runs, {}


def metrics_table(patterns: list[str]) -> str:
    """A row per run's metrics.json: what it trained, for how long, and its MRRs."""
    lines = [
        "| run | sampler | decoder | epochs | best epoch | valid MRR | test MRR | training (s) "
        "| device |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            m = json.loads(path.read_text())
            valid, test = (_mrr_text(m[split]) for split in ("valid", "test"))
            lines.append(
                f"| {path.name.removesuffix('.metrics.json')} | {m['sampler']} | {m['decoder']} "
                f"| {m['epochs']} | {m['best_epoch']} | {valid} | {test} "
                f"| {m['train_seconds']:.0f} | {m['device']} |"
            )
    return "\n".join(lines) + "\n"


def _mrr_text(evaluation: dict) -> str:
    """An MRR as the tables print it, named as sampled where it was."""
    candidates = evaluation.get("sampled_candidates")
    mrr = three(evaluation["mrr"])
    return f"{mrr} (sampled against {candidates:,})" if candidates else mrr


def json_table(path: Path) -> str:
    """Every value of a benchmark's JSON, by its path of keys."""
    lines = ["| value | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in _flatten(json.loads(path.read_text()))]
    return "\n".join(lines) + "\n"


def fields_table(paths: list[Path], keys: list[str]) -> str:
    """A row per JSON file, named by its stem: the values at ``keys`` (``outer/inner``)."""
    lines = ["| file | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for path in paths:
        values = dict(_flatten(json.loads(path.read_text())))
        cells = [values[f"`{key.replace('/', ' / ')}`"] for key in keys]
        lines.append(f"| {path.stem} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def budgets_table(paths: list[Path]) -> str:
    """A row per run of ``benchmarks/time_budget.py``: the recipe, the settings it changed (the
    checkpoint cadence and a seed other than 1 among them) and its budget, how the budget was
    spent, where validation peaked, the test MRR and the target."""
    lines = [
        "| recipe | changed | budget | training | validation | writing | epochs | best epoch "
        "| valid MRR | test MRR | target | reached |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        run = json.loads(path.read_text())
        base = ("sampler", "encoder", "decoder", "seed")
        changes = [f"{k} {v}" for k, v in run["settings"].items() if k not in base]
        if run["settings"]["seed"] != 1:
            changes.append(f"seed {run['settings']['seed']}")
        # Older records predate the option: they saved every epoch.
        cadence = run.get("checkpoint_every", str(CHECKPOINT_EVERY))
        if cadence != str(CHECKPOINT_EVERY):
            changes.append(f"checkpoint every {cadence}")
        changed = ", ".join(changes)
        seconds = [
            f"{run[key]:.0f} s"
            for key in ("time_budget_seconds", "training_seconds", "validation_seconds")
        ]
        target = run["target_test_mrr"]
        lines.append(
            f"| {run['recipe']} | {changed or '–'} | {' | '.join(seconds)} | "
            f"{run['writing_seconds']:.1f} s | "
            f"{run['epochs']} | {run['best_epoch']} | {three(run['valid_mrr'])} | "
            f"{three(run['test_mrr'])} | {'–' if target is None else three(target)} | "
            f"{'–' if run['reached'] is None else ('yes' if run['reached'] else 'no')} |"
        )
    return "\n".join(lines) + "\n"


def diversity_table(path: Path, decoder: str) -> str:
    """Per sampler with finished runs of ``decoder`` in a grid's results.csv: its seeds, test
    MRR and each diversity measure, mean ± std over seeds. A run without the measures (1-vs-all
    samples no negatives to measure) is left out."""
    rows = [row for row in read_rows(path) if row.key["decoder"] == decoder and row.diversity]
    lines = [
        "| sampler | seeds | test MRR | " + " | ".join(DIVERSITY_COLUMNS) + " |",
        "|" + "---|" * (3 + len(DIVERSITY_COLUMNS)),
    ]
    for sampler, runs in by_seed(rows, "sampler").items():
        if not runs:
            continue
        cells = [mean_std_text([run.test["mrr"] for run in runs.values()])]
        cells += [
            _measure_text([run.diversity[key] for run in runs.values()])
            for key in DIVERSITY_COLUMNS
        ]
        lines.append(f"| {sampler} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _measure_text(values: list[float]) -> str:
    """Mean ± std as :func:`mean_std_text` writes a rate, and in two decimals from 1 in size
    (a distance, an entropy, a score): ``7.94 ± 0.22``, or ``7.94`` alone for one value."""
    mean, spread = mean_std(values)
    if abs(mean) < 1:
        return mean_std_text(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {spread:.2f}"


def _flatten(value: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flatten(v, f"{prefix}{k} / ")]
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        return [pair for i, v in enumerate(value, 1) for pair in _flatten(v, f"{prefix}{i} / ")]
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list):
        text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = str(value).replace("|", "\\|")
    return [(f"`{prefix.removesuffix(' / ')}`", text)]


def _mean_text(values: list[float]) -> str:
    """Rates (below 1) as ``mean_std_text`` gives them; counts and seconds to one decimal, a
    single whole number as it is; no spread for a single value."""
    if not values:
        return "–"
    if max(values) < 1:
        return mean_std_text(values)
    if len(values) == 1:
        return str(int(values[0])) if values[0].is_integer() else f"{values[0]:.1f}"
    mean, spread = mean_std(values)
    return f"{mean:.1f} ± {spread:.1f}"


def _epoch_seconds(runs: dict[int, GridRow]) -> float:
    return statistics.median(r.train_seconds / r.epochs for r in runs.values())


def _cell(sampler: str | None, means: dict[str, float], p: float | None) -> str:
    """A sampler's mean MRR, named unless it is the column's own, with its corrected p."""
    if sampler is None or sampler not in means:
        return "–"
    name = "" if sampler in ("uniform", "dans", "all-entities") else f"{sampler} "
    tested = "" if p is None else f" (p {'<.001' if p < 0.001 else three(p)})"
    return f"{name}{three(means[sampler])}{tested}"


def holm_against_uniform(rows: list[GridRow]) -> dict[tuple[str, str], float]:
    """Each (decoder, sampler)'s paired t-test of MRR against uniform over the seeds both ran,
    Holm-corrected across every such test in ``rows``."""
    tests, raw = [], []
    for decoder in dict.fromkeys(row.key["decoder"] for row in rows):
        groups = by_seed([r for r in rows if r.key["decoder"] == decoder], "sampler")
        for sampler, runs in groups.items():
            if sampler != "uniform" and "uniform" in groups:
                tests.append((decoder, sampler))
                raw.append(mrr_p_value(runs, groups["uniform"]))
    return {test: p for test, p in zip(tests, holm(raw), strict=True) if p == p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    args = parser.parse_args()
    stale = []
    for path in documents():
        text = path.read_text()
        rendered = render(text)
        if rendered != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(rendered)
    for path in stale:
        print(f"{path}: {'differs from' if args.check else 'rendered from'} the result files")
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()
