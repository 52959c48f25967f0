"""Train a configuration end to end into a run directory, and load runs back."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from dans import distributed, memory
from dans.builders import build_model, build_sampler, check_names, load_graph
from dans.config import TrainConfig, resolve_device
from dans.data.datasets import load_dataset
from dans.data.graph import KnowledgeGraph
from dans.distributed import world
from dans.errors import DansError, DataError, TrainingDiverged
from dans.evaluation.metrics import evaluate
from dans.rundir import (
    CHECKPOINT_FILE,
    PROVENANCE_FILE,
    STATE_FILE,
    FinishedRun,
    Run,
    RunDirectory,
    RunMetrics,
    RunWriter,
)
from dans.sealed import first_line
from dans.tracking import NO_TRACKERS, TrackerSpec
from dans.training.cadence import CheckpointCadence
from dans.training.callbacks import ProgressBar, TrainingCallback
from dans.training.epoch_log import EpochLog
from dans.training.footprint import check_fits
from dans.training.trainer import Trainer

# Epochs between saved training states, unless the caller sets another cadence.
CHECKPOINT_EVERY = 1


def run_training(
    config: TrainConfig | None,
    out: str | Path | None = None,
    *,
    resume_run: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_every: int | str = CHECKPOINT_EVERY,
    callbacks: Sequence[TrainingCallback] = (),
    trackers: TrackerSpec = NO_TRACKERS,
    tracker_params: dict[str, Any] | None = None,
    on_start: Callable[[], None] | None = None,
) -> FinishedRun:
    """Train ``config`` into ``out`` (see :func:`train`), or with ``resume_run`` finish the run
    in ``out`` with its own configuration (see :func:`resume`; ``config`` is then None), logged
    to ``trackers`` under the folder's name with ``tracker_params`` beside the configuration;
    the trackers see every epoch before ``callbacks`` do, and the test metrics at the end.
    The one way that commands, grids and searches run a run."""
    if resume_run:
        if out is None:
            raise DansError("resuming a run needs its folder")
        RunDirectory(out).check_can_resume()
        config = RunDirectory(out).read_config()
    if config is None:
        raise DansError("training needs a configuration")
    name = Path(out).name if out is not None else ""
    with trackers.open(name, config, tracker_params) as log:
        if resume_run:
            assert out is not None
            run = resume(out, progress, checkpoint_every, callbacks=[log, *callbacks])
        else:
            run = train(
                config,
                out,
                overwrite,
                progress,
                checkpoint_every,
                on_start,
                callbacks=[log, *callbacks],
            )
        log.log_final(run.metrics)
    return run


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_every: int | str = CHECKPOINT_EVERY,
    on_start: Callable[[], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    graph: KnowledgeGraph | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> FinishedRun:
    """Train, validate, test; write the run directory ``out`` when given.

    ``graph`` is trained on instead of the dataset the configuration names (one made from
    PyKEEN's triples factories by :func:`dans.data.from_triples_factories`, say); its run loads
    back with ``load_run(out, graph=graph)``.

    Everything that can be checked before training (values, names, data files, the output path)
    is checked before anything is written, so bad input never leaves a half-written directory;
    ``on_start`` is called then, as training begins. ``callbacks`` (see
    :class:`~dans.training.callbacks.TrainingCallback`) follow the run, in a process group in
    every process, each epoch after the run directory has it; ``on_epoch``, a function of each
    epoch's log row, is the older form of one and goes in the next release.
    Every ``checkpoint_every`` epochs (0: never), or when it is a duration (``"5m"``) after each
    epoch that ends that long after the last save, and after the last epoch, the whole training
    state is saved to ``out`` so that :func:`resume` can continue a killed run. Started by
    ``torchrun``, every process trains and only rank 0 writes.
    """
    device = _prepare(config, checkpoint_every)
    run_dir = RunDirectory(out) if out is not None and world().main else None
    if run_dir is not None:
        run_dir.check_can_start(overwrite)
    kg = graph if graph is not None else load_graph(config)
    check_fits(config, kg, device)
    watchers = _callbacks(config, run_dir, progress, callbacks, on_epoch)
    trainer = build_trainer(config, kg, device, watchers, checkpoint_every)
    with run_dir.writing(start=True, overwrite=overwrite) if run_dir else nullcontext():
        if run_dir is not None:
            _record(run_dir, config, kg, device)
        if on_start is not None:
            on_start()
        return _finish(trainer, run_dir)


def resume(
    path: str | Path,
    progress: bool = True,
    checkpoint_every: int | str = CHECKPOINT_EVERY,
    on_epoch: Callable[[dict], None] | None = None,
    callbacks: Sequence[TrainingCallback] = (),
) -> FinishedRun:
    """Finish the run in ``path`` with its own config.toml, from its last saved training state.

    The result is what the run would have given had it never stopped (on the CPU, exactly). A
    run killed before its first saved state starts again; a finished run is loaded as it is.
    ``callbacks`` (and the older ``on_epoch``) follow the epochs trained from here, as in
    :func:`train`.
    """
    run_dir = RunDirectory(path)
    run_dir.check_can_resume()
    config = run_dir.read_config()
    device = _prepare(config, checkpoint_every)
    writer = run_dir if world().main else None  # rank 0 alone writes
    with writer.writing() if writer else nullcontext():
        if (metrics := run_dir.read_metrics()) is not None:
            return FinishedRun(**{**vars(load_run(path)), "metrics": metrics})
        state = run_dir.load_state()
        kg = run_graph(run_dir, config)
        check_fits(config, kg, device)
        watchers = _callbacks(config, writer, progress, callbacks, on_epoch)
        trainer = build_trainer(config, kg, device, watchers, checkpoint_every)
        if state is None:  # killed before its first saved state: it starts again
            if writer is not None:
                writer.remove_run_files()
                _record(writer, config, kg, device)
        else:
            _restore(trainer, state, run_dir.path / STATE_FILE, writer)
        return _finish(trainer, writer)


class _EpochFunction(TrainingCallback):
    """The older ``on_epoch`` function as a callback."""

    def __init__(self, function: Callable[[dict], None]) -> None:
        self.function = function

    def on_epoch_end(self, trainer: Trainer, log: EpochLog) -> None:
        self.function(log.row())


def _callbacks(
    config: TrainConfig,
    run_dir: RunDirectory | None,
    progress: bool,
    callbacks: Sequence[TrainingCallback],
    on_epoch: Callable[[dict], None] | None,
) -> list[TrainingCallback]:
    """A run's callbacks: its folder's writer first, then the progress bar (rank 0's), then
    the caller's."""
    found: list[TrainingCallback] = [RunWriter(run_dir, config)] if run_dir else []
    found += [ProgressBar()] if progress and world().main else []
    found += callbacks
    if on_epoch is not None:
        warnings.warn(
            "on_epoch= goes in the next release: pass callbacks=[a TrainingCallback] instead",
            DeprecationWarning,
            stacklevel=3,
        )
        found.append(_EpochFunction(on_epoch))
    return found


def _record(
    run_dir: RunDirectory, config: TrainConfig, kg: KnowledgeGraph, device: torch.device
) -> None:
    """Write the configuration and what the run trains on and with."""
    run_dir.write_config(config)
    run_dir.write_provenance(kg, str(device))


def run_graph(
    run_dir: RunDirectory, config: TrainConfig, graph: KnowledgeGraph | None = None
) -> KnowledgeGraph:
    """The graph a run trained on: ``graph`` when given, else read from the folder it recorded,
    whatever the working folder, or as its configuration names it where that folder is gone
    (another machine). Refused in one line when a split's SHA-256 differs from the recorded
    one."""
    recorded = run_dir.read_provenance()
    if recorded is None:  # a run from before runs recorded their data
        return graph if graph is not None else load_graph(config)
    try:
        data = recorded["data"]
        source, name, checksums = Path(data["source"]), data["dataset"], dict(data["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DansError(
            f"{run_dir.path / PROVENANCE_FILE}: not the record of a dans run ({exc!r})"
        ) from None
    # An empty source would be the working folder: only a recorded folder that exists is read.
    recorded_folder = data["source"] and source.is_dir()
    if graph is not None:
        kg = graph
    else:
        kg = load_dataset(name, source) if recorded_folder else load_graph(config)
    for split, checksum in checksums.items():
        if kg.checksums.get(split) != checksum:
            where, what = (
                (Path(kg.source) / f"{split}.txt", "file")
                if kg.source
                else (f"{kg.name}'s {split} split", "split")
            )
            raise DataError(
                f"{where}: differs from the {what} {run_dir.path} was trained on (its SHA-256 "
                "changed)"
            )
    return kg


def _prepare(config: TrainConfig, checkpoint_every: int | str) -> torch.device:
    """Refuse bad settings; join the process group when started by ``torchrun``. Returns the
    device this process trains on."""
    config.validate()
    check_names(config)
    try:
        CheckpointCadence.parse(checkpoint_every)
    except ValueError as exc:
        raise DansError(f"--checkpoint-every: {exc}") from None
    device = resolve_device(config.runtime.device)
    if distributed.launched_by_torchrun() and config["sparse_embeddings"]:
        raise DansError(
            "--sparse-embeddings trains in one process: under torchrun the processes would "
            "have to exchange row-sparse gradients, which dans does not do"
        )
    device = distributed.start(device) if distributed.launched_by_torchrun() else device
    memory.reset_peak(device)
    return device


def build_trainer(
    config: TrainConfig,
    kg: KnowledgeGraph,
    device: torch.device,
    callbacks: Sequence[TrainingCallback] = (),
    checkpoint_every: int | str = 0,
) -> Trainer:
    """The model, the samplers and their trainer on ``device``, with ``callbacks`` (nothing is
    written before :meth:`Trainer.fit`)."""
    torch.manual_seed(config.runtime.seed)
    model = build_model(config, kg).to(device)
    sampler = build_sampler(config.training.sampler, config, kg).to(device)
    pretrain_sampler = build_sampler("uniform", config, kg).to(device)
    return Trainer(
        model,
        kg,
        config,
        sampler,
        pretrain_sampler,
        device,
        callbacks=callbacks,
        checkpoint_every=checkpoint_every,
    )


def _restore(
    trainer: Trainer, state: dict[str, Any], source: Path, run_dir: RunDirectory | None
) -> None:
    """Bring the trainer, and the files of ``run_dir`` if given, back to the state read from
    ``source``: files written after it are rewritten as the epochs after it are trained again."""
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise DansError(f"{source}: does not fit its config.toml ({first_line(exc)})") from None
    if run_dir is None:
        return
    run_dir.restore_log(trainer.history)
    if trainer.best is not None:
        RunWriter(run_dir, trainer.config).on_best(trainer, trainer.best)


def _finish(trainer: Trainer, run_dir: RunDirectory | None) -> FinishedRun:
    """Train to the end, test, and write the metrics."""
    model, kg, config = trainer.model, trainer.kg, trainer.config
    try:
        result = trainer.fit()
    except TrainingDiverged as exc:
        kept = (
            f"the last good checkpoint is kept in {run_dir.path / CHECKPOINT_FILE}"
            if run_dir is not None and (run_dir.path / CHECKPOINT_FILE).exists()
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(f"{exc}; {kept}") from None
    test = evaluate(model, kg, "test", **config.ranking())
    metrics = RunMetrics(
        dataset=kg.name,
        encoder=config.model.encoder,
        decoder=config.model.decoder,
        sampler=config.training.sampler,
        seed=config.runtime.seed,
        epochs=result.epochs_run,
        best_epoch=result.best_epoch,
        valid=result.best_valid,
        test=test,
        train_seconds=result.train_seconds,
        eval_seconds=result.eval_seconds + test.seconds,
        seconds_per_epoch=result.train_seconds / max(1, result.epochs_run),
        skipped_steps=result.skipped_steps,
        device=str(trainer.device),
        peak_memory_mb=memory.peak_mb(trainer.device),
        num_entities=kg.num_entities,
        num_relations=kg.num_relations,
        time_budget_seconds=trainer.budget,
        elapsed_seconds=result.elapsed_seconds,
    )
    if run_dir is not None:
        run_dir.write_metrics(metrics)
        run_dir.remove_state()
    return FinishedRun(
        model=model,
        kg=kg,
        config=config,
        path=run_dir.path if run_dir else None,
        metrics=metrics,
        sampler=trainer.sampler,
    )


def load_run(path: str | Path, device: str = "cpu", graph: KnowledgeGraph | None = None) -> Run:
    """Rebuild a finished run's model, sampler, graph and configuration from its directory; a
    run trained on a ``graph`` given to :func:`train` needs it again here."""
    run_dir = RunDirectory(path)
    config = run_dir.read_config()
    checkpoint = run_dir.load_checkpoint()
    kg = run_graph(run_dir, config, graph)
    model = build_model(config, kg)
    sampler = build_sampler(config.training.sampler, config, kg)
    try:
        model.load_state_dict(checkpoint["model"])
        if checkpoint.get("sampler"):
            sampler.load_state_dict(checkpoint["sampler"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise DansError(
            f"{run_dir.path / CHECKPOINT_FILE}: does not fit its config.toml ({first_line(exc)})"
        ) from None
    target = resolve_device(device)
    model.to(target).eval()
    sampler.to(target).eval()
    return Run(
        model=model,
        kg=kg,
        config=config,
        path=run_dir.path,
        metrics=run_dir.read_metrics(),
        sampler=sampler,
        epoch=checkpoint.get("epoch"),
    )
