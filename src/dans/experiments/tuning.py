"""``dans tune``: a hyper-parameter search with Optuna (TPE, pruning on the validation MRR) over
any training setting, in a study that a database keeps, so that a killed search continues and
several processes or machines share one.

Each trial trains into ``out/trials/<number>``. The study counts its trials in total: asked for
N, a rerun trains only those missing. A trial whose process died holds no heartbeat; once its
lease lapses the next process to look fails it and asks again for its parameters. Only the
validation MRR is optimised; the best configuration is written as ``out/config.toml``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dans.config import COMPONENTS, SECTIONS, TrainConfig, read_toml, where_set
from dans.errors import ConfigError, DansError, TrainingDiverged
from dans.experiments.claims import LEASE_SECONDS, locked
from dans.experiments.plots import save_figure
from dans.experiments.results import render_csv
from dans.files import make_folder, write_atomic
from dans.folders import Kind, claim_folder
from dans.options import OptionError, flag_name, show, value_type
from dans.pipeline import run_training
from dans.redaction import shown_url, without_secrets
from dans.rundir import CONFIG_FILE
from dans.sealed import first_line
from dans.tracking import NO_TRACKERS, TrackerSpec
from dans.training.callbacks import TrainingCallback
from dans.training.epoch_log import EpochLog
from dans.training.trainer import Trainer

if TYPE_CHECKING:
    import optuna

STUDY_FILE, TRIALS_FILE, BEST_FILE = "study.db", "trials.csv", "best.json"
HISTORY_CHART, IMPORTANCE_CHART = "history.png", "importances.png"
TRIALS_FOLDER = "trials"
# What a table of the space file may say of its setting.
SPACE_FIELDS = ("low", "high", "log", "step", "choices")
# Settings a search may not vary: the data and where a run happens are not training settings,
# and the tie policy changes how the validation MRR is measured, not the model.
FIXED_SETTINGS = (*(key for key in SECTIONS["data"].specs()), "ties", "seed", "device")
# Stale trials are failed, then tried again with the same parameters this many times at most.
MAX_RETRIES = 2
# The states of the trials a study counts: those that ran to the end or were pruned.
FINISHED = ("COMPLETE", "PRUNED")
# Tries at opening a study in a shared database that another process is creating.
OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class Dimension:
    """One setting of the search space: a range (``low`` to ``high``, on a log scale or in
    steps of ``step``) or a list of ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this setting, asked of the study's sampler."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None
        if value_type(TrainConfig.specs()[self.key]) is int:
            low, high, step = int(self.low), int(self.high), int(self.step or 1)
            return trial.suggest_int(self.key, low, high, step=step, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        """The table of the space file that says this (its fields that are set)."""
        fields = {"low": self.low, "high": self.high, "step": self.step}
        table = {name: value for name, value in fields.items() if value is not None}
        if self.log:
            table["log"] = True
        if self.choices:
            table["choices"] = list(self.choices)
        return table


def read_space(path: Path, base: TrainConfig) -> list[Dimension]:
    """The search space in TOML file ``path``: one table per setting, named by its config key
    or flag (``[lr]``, ``[edge-dropout]``), with ``low``, ``high`` and optionally ``log`` or
    ``step``, or with ``choices``. Every bound and choice is checked against the setting's own
    range, with ``base`` for the settings the space leaves alone; errors name the file and line.
    """
    text, tables = read_toml(path)
    if not tables:
        raise ConfigError(f"{path}: the space names no setting; add a table such as [lr]")
    specs = TrainConfig.specs()
    keys = [name.removeprefix("--").replace("-", "_") for name in tables]
    varied = [kind for kind in COMPONENTS if kind in keys]
    dimensions = []
    for name, key in zip(tables, keys, strict=True):
        table = tables[name]
        if not isinstance(table, dict):
            raise ConfigError(
                f"{where_set(path, text, name)}: {name} must be a table, such as [{name}] with "
                "low and high"
            )
        header = where_set(path, text, None, name)
        if keys.count(key) > 1:
            raise ConfigError(f"{header}: {key} is named twice (as a key and as a flag)")
        if key not in specs:
            raise ConfigError(f"{header}: {name!r} is not a setting of `dans train`")
        if key in FIXED_SETTINGS:
            raise ConfigError(
                f"{header}: {flag_name(key)} cannot be searched (a search varies how the model "
                "trains, not the data, the seed, the device or how ranks are measured)"
            )
        unused = base.unused(key, varied)
        if unused:
            raise ConfigError(f"{header}: {unused}: it would change nothing")
        dimension = _dimension(key, table, functools.partial(where_set, path, text, table=name))
        _check_values(dimension, base, header)
        dimensions.append(dimension)
    return dimensions


def _dimension(key: str, table: dict[str, Any], where: Callable[[str], str]) -> Dimension:
    """The dimension a space table declares; ``where(field)`` locates a field in the file."""
    unknown = [field for field in table if field not in SPACE_FIELDS]
    if unknown:
        raise ConfigError(
            f"{where(unknown[0])}: [{key}] has no field {unknown[0]!r}; use low and high "
            "(with log or step), or choices"
        )
    kind = value_type(TrainConfig.specs()[key])
    if "choices" in table:
        choices = table["choices"]
        others = [field for field in table if field != "choices"]
        if others:
            raise ConfigError(f"{where(others[0])}: [{key}] takes choices or a range, not both")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where('choices')}: choices must be a non-empty list")
        if len(set(map(repr, choices))) < len(choices):
            raise ConfigError(f"{where('choices')}: choices lists a value twice")
        return Dimension(key, choices=tuple(_typed(kind, v, where("choices")) for v in choices))
    if kind not in (int, float):
        raise ConfigError(f"{where(next(iter(table), key))}: {key} takes choices, not a range")
    missing = [field for field in ("low", "high") if field not in table]
    if missing:
        raise ConfigError(f"{where(next(iter(table), key))}: [{key}] needs {missing[0]}")
    low, high = (_typed(kind, table[field], where(field)) for field in ("low", "high"))
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where('log')}: log must be true or false, got {show(log)}")
    step = _typed(kind, table["step"], where("step")) if "step" in table else None
    if not low < high:
        raise ConfigError(f"{where('high')}: high must be greater than low ({low} >= {high})")
    if log and low <= 0:
        raise ConfigError(f"{where('low')}: a log scale needs low > 0, got {low}")
    if step is not None and (log or step <= 0):
        raise ConfigError(f"{where('step')}: step must be positive, and not with log = true")
    return Dimension(key, low=low, high=high, log=log, step=step)


def _typed(kind: type, value: Any, where: str) -> Any:
    """``value`` as a value of a setting of type ``kind`` (an int stands for a float)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value}")
    return value


def _check_values(dimension: Dimension, base: TrainConfig, where: str) -> None:
    """Refuse a bound or a choice outside its setting's own range."""
    values = dimension.choices or (dimension.low, dimension.high)
    for value in values:
        try:
            base.replace(**{dimension.key: value})
        except OptionError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class TuneOptions:
    """How a search runs, none of which changes a trial's result: the study's storage (an
    Optuna database URL; None: SQLite in the output folder) and name, the lease of a trial's
    heartbeat, progress lines, and the trackers each trial logs to."""

    storage: str | None = None
    study: str = "dans"
    lease_seconds: float = LEASE_SECONDS
    report: Callable[[str], None] = print
    trackers: TrackerSpec = NO_TRACKERS


@dataclass(frozen=True)
class TuneResult:
    """The study after a search: its finished trials (complete and pruned), the best one's
    number, validation MRR and configuration, and the search's wall clock in this process."""

    finished: int
    best_trial: int
    best_valid_mrr: float
    best_config: TrainConfig
    seconds: float


def tune(
    base: TrainConfig,
    space: Sequence[Dimension],
    trials: int,
    out: Path,
    options: TuneOptions | None = None,
) -> TuneResult:
    """Search ``space`` around ``base`` until the study holds ``trials`` finished trials
    (complete or pruned); returns the best.

    Writes ``out/config.toml`` (the best configuration, for ``dans train --config``),
    ``out/best.json``, ``out/trials.csv`` and Optuna's charts of the optimisation history and
    of the parameters' importances. A study started with other base settings or another space
    is refused, so that all its trials answer one question.
    """
    options = options or TuneOptions()
    if trials < 1:
        raise DansError(f"--trials must be at least 1, got {trials}")
    base.validate()
    optuna = _optuna()
    make_folder(out)
    # A search written before folders had markers is known by its study or trials.
    adopt = (out / STUDY_FILE).exists() or (out / TRIALS_FOLDER).is_dir()
    claim_folder(out, Kind.SEARCH, adopt=adopt)
    make_folder(out / TRIALS_FOLDER)
    start = time.monotonic()
    with _quiet_optuna():
        study = _study(optuna, base, space, out, options)
        retry = min(options.lease_seconds / 3, 30.0)
        while True:
            optuna.storages.fail_stale_trials(study)
            states = [trial.state.name for trial in study.get_trials(deepcopy=False)]
            finished = sum(states.count(state) for state in FINISHED)
            if finished >= trials:
                break
            if finished + states.count("RUNNING") >= trials and "WAITING" not in states:
                # The trials left are under way elsewhere: wait for them, or for their lease.
                time.sleep(retry)
                continue
            # Seeded by the trials so far, so that one process alone asks for the same
            # settings on every rerun; constant_liar, so that concurrent trials spread out.
            study.sampler = optuna.samplers.TPESampler(
                seed=base.runtime.seed + len(states), constant_liar=True
            )
            objective = _Objective(base, space, trials, out, options)
            with contextlib.suppress(_Surplus):
                study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
        return _summarize(study, base, out, time.monotonic() - start)


class _Surplus(Exception):
    """Raised by a trial asked for after another process took the study's last one."""


class Pruner(TrainingCallback):
    """Reports each validation MRR to an Optuna trial and ends the trial where its pruner says
    so, after the epoch is recorded."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        import optuna

        if "mrr" in log.valid:
            self.trial.report(log.valid["mrr"], log.epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {log.epoch}")


class _Objective:
    """One trial: train the suggested configuration into ``out/trials/<number>``, reporting each
    validation MRR so the pruner can stop it; returns its best validation MRR."""

    def __init__(
        self,
        base: TrainConfig,
        space: Sequence[Dimension],
        trials: int,
        out: Path,
        options: TuneOptions,
    ) -> None:
        self.base, self.space, self.trials = base, space, trials
        self.out, self.options = out, options

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise _Surplus
        values = {dimension.key: dimension.suggest(trial) for dimension in self.space}
        config = self.base.replace(**values)
        run_dir = self.out / TRIALS_FOLDER / f"{trial.number:04d}"
        trial.set_user_attr("run", run_dir.name)
        label = f"trial {trial.number}: " + ", ".join(
            f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
            for key, value in values.items()
        )

        start = time.monotonic()
        try:
            run = run_training(
                config,
                run_dir,
                overwrite=True,
                progress=False,
                checkpoint_every=0,
                callbacks=[Pruner(trial)],
                trackers=self.options.trackers,
                tracker_params={"trial": trial.number},
            )
        except optuna.TrialPruned as exc:
            self.options.report(f"{label}: {exc} ({time.monotonic() - start:.0f} s)")
            raise
        except TrainingDiverged as exc:
            # A setting that makes training diverge is an answer, not a failure of the search.
            trial.set_user_attr("diverged", str(exc))
            self.options.report(f"{label}: diverged, counted as pruned")
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        mrr = run.metrics.valid.mrr
        self.options.report(
            f"{label}: valid MRR {mrr:.4f} at epoch {run.metrics.best_epoch} "
            f"({time.monotonic() - start:.0f} s)"
        )
        return mrr

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Whether the trials numbered before ``trial`` that are finished or under way already
        make up the study: another process took the last one as this one asked."""
        counted = (*FINISHED, "RUNNING", "WAITING")
        before = [
            other
            for other in trial.study.get_trials(deepcopy=False)
            if other.number < trial.number and other.state.name in counted
        ]
        return len(before) >= self.trials


def _optuna() -> Any:
    """Optuna, an optional extra: imported when a search starts."""
    try:
        import optuna
    except ImportError:
        raise DansError("dans tune needs Optuna: pip install 'dans-kge[tune]'") from None
    return optuna


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's own lines (one per trial, experimental-feature warnings) off: the search reports
    its trials itself."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def warm_up_epochs(config: TrainConfig) -> int:
    """Epochs in which a trial is never pruned: pretraining, then as many epochs as early
    stopping grants a run without a better validation MRR; a slow start is not a bad end."""
    evaluation = config.evaluation
    return config.training.pretrain_epochs + max(1, evaluation.patience) * evaluation.eval_every


def _study(
    optuna: Any, base: TrainConfig, space: Sequence[Dimension], out: Path, options: TuneOptions
) -> optuna.Study:
    """The study named ``options.study`` in its storage, created or loaded; a loaded one must
    have been started with ``base`` and ``space``."""
    import sqlalchemy

    url = options.storage or f"sqlite:///{(out / STUDY_FILE).resolve()}"
    lease = max(2, math.ceil(options.lease_seconds))
    # Processes here open the study one at a time: two creating a new database at once race on
    # its tables. Processes elsewhere on a shared database may still race once: try again.
    with locked(out):
        for _ in range(OPEN_ATTEMPTS):
            try:
                study = optuna.create_study(
                    storage=optuna.storages.RDBStorage(
                        url,
                        heartbeat_interval=max(1, lease // 5),
                        grace_period=lease,
                        heartbeat_stale_trial_callback=(
                            optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRIES)
                        ),
                    ),
                    study_name=options.study,
                    direction="maximize",
                    pruner=optuna.pruners.MedianPruner(
                        n_startup_trials=5, n_warmup_steps=warm_up_epochs(base)
                    ),
                    load_if_exists=True,
                )
            except sqlalchemy.exc.OperationalError as exc:
                failure = str(exc.orig)
                time.sleep(1.0)
            except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
                message = f"--storage {url}: cannot open the study ({first_line(exc)})"
                raise DansError(without_secrets(message, url)) from None
            else:
                _check_question(study, base, space, url)
                return study
    message = f"--storage {url}: cannot open the study ({failure})"
    raise DansError(without_secrets(message, url))


def _check_question(
    study: optuna.Study, base: TrainConfig, space: Sequence[Dimension], url: str
) -> None:
    """Record what the study asks (the base settings and the space) in a new study; refuse to
    go on with a study that asks something else."""
    question = {
        "config": base.to_dict(),
        "space": {dimension.key: dimension.to_dict() for dimension in space},
    }
    asked = study.user_attrs.get("question")
    if asked is None:
        study.set_user_attr("question", question)
    elif json.dumps(asked, sort_keys=True) != json.dumps(question, sort_keys=True):
        changed = sorted(
            key
            for part in ("config", "space")
            for key in {*asked[part], *question[part]}
            if asked[part].get(key) != question[part].get(key)
        )
        raise DansError(
            f"study {study.study_name!r} in {shown_url(url)} was started with other settings "
            f"({', '.join(changed)}); use a new --out or --study"
        )


def _summarize(study: optuna.Study, base: TrainConfig, out: Path, seconds: float) -> TuneResult:
    """Write the best configuration, the table of trials and the charts; returns the result."""
    trials = study.get_trials(deepcopy=False)
    finished = [trial for trial in trials if trial.state.name in FINISHED]
    if not any(trial.state.name == "COMPLETE" for trial in trials):
        raise DansError(f"{out}: no trial finished unpruned, so there is no best configuration")
    best = study.best_trial
    config = base.replace(**best.params)
    keys = sorted({key for trial in trials for key in trial.params})
    rows = [
        {
            "number": str(trial.number),
            "state": trial.state.name.lower(),
            "valid_mrr": "" if trial.value is None else repr(trial.value),
            "last_epoch": str(trial.last_step or ""),
            "seconds": f"{trial.duration.total_seconds():.1f}" if trial.duration else "",
            **{key: repr(trial.params[key]) if key in trial.params else "" for key in keys},
        }
        for trial in trials
    ]
    columns = ("number", "state", "valid_mrr", "last_epoch", "seconds", *keys)
    record = {
        "trial": best.number,
        "valid_mrr": best.value,
        "params": best.params,
        "run": f"{TRIALS_FOLDER}/{best.user_attrs['run']}",  # from the search's folder
        "finished_trials": len(finished),
    }
    with locked(out):
        write_atomic(out / CONFIG_FILE, config.to_toml().encode())
        write_atomic(out / BEST_FILE, (json.dumps(record, indent=2) + "\n").encode())
        write_atomic(out / TRIALS_FILE, render_csv(rows, columns).encode())
        _charts(study, out)
    return TuneResult(len(finished), best.number, float(best.value), config, seconds)


def _charts(study: optuna.Study, out: Path) -> None:
    """Optuna's charts of the optimisation history and, once there are enough trials to tell,
    of the parameters' importances (fANOVA)."""
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as charts

    figures = [(charts.plot_optimization_history(study).figure, HISTORY_CHART)]
    if sum(trial.state.name == "COMPLETE" for trial in study.get_trials(deepcopy=False)) > 1:
        # Importances take two complete trials or more to tell apart.
        figures.append((charts.plot_param_importances(study).figure, IMPORTANCE_CHART))
    for figure, name in figures:
        save_figure(figure, out / name)
        pyplot.close(figure)
