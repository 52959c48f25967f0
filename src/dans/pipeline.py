"""Train a configuration end to end into a run directory, and load runs back."""

from __future__ import annotations

from pathlib import Path

import torch

from dans.builders import build_model, build_sampler, check_names, load_graph
from dans.config import TrainConfig, resolve_device
from dans.errors import DansError, TrainingDiverged
from dans.evaluation.metrics import evaluate
from dans.rundir import CHECKPOINT_FILE, Run, RunDirectory
from dans.training.trainer import Trainer


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Run:
    """Train, validate, test; write the run directory ``out`` when given.

    Everything that can be checked before training (values, names, data files, the output path)
    is checked before anything is written, so bad input never leaves a half-written directory.
    """
    config.validate()
    check_names(config)
    run_dir = RunDirectory(out) if out is not None else None
    if run_dir is not None:
        run_dir.check_writable(overwrite)
    kg = load_graph(config)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config, kg).to(device)
    sampler = build_sampler(config.sampler, config, kg, model).to(device)
    pretrain_sampler = build_sampler("uniform", config, kg, model).to(device)
    if run_dir is not None:
        run_dir.create(overwrite)
        run_dir.write_config(config)
    trainer = Trainer(
        model,
        kg,
        config,
        sampler,
        pretrain_sampler,
        device,
        on_epoch=run_dir.append_log if run_dir else None,
        on_improvement=(
            (lambda epoch, valid: run_dir.save_checkpoint(model, config, epoch, valid, sampler))
            if run_dir
            else None
        ),
        progress=progress,
    )
    try:
        result = trainer.fit()
    except TrainingDiverged as exc:
        kept = (
            f"the last good checkpoint is kept in {run_dir.path / CHECKPOINT_FILE}"
            if run_dir is not None and (run_dir.path / CHECKPOINT_FILE).exists()
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(f"{exc}; {kept}") from None
    test = evaluate(model, kg, "test", ties=config.ties, memory_mb=config.eval_memory_mb)
    metrics = {
        "dataset": kg.name,
        "encoder": config.encoder,
        "decoder": config.decoder,
        "sampler": config.sampler,
        "seed": config.seed,
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch,
        "valid": result.best_valid,
        "test": test,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds + test["seconds"],
        "seconds_per_epoch": result.train_seconds / max(1, result.epochs_run),
        "skipped_steps": result.skipped_steps,
        "device": str(device),
        "num_entities": kg.num_entities,
        "num_relations": kg.num_relations,
    }
    if run_dir is not None:
        run_dir.write_metrics(metrics)
    return Run(
        model=model,
        kg=kg,
        config=config,
        path=run_dir.path if run_dir else None,
        metrics=metrics,
        sampler=sampler,
    )


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Rebuild a finished run's model, sampler, graph and configuration from its directory."""
    run_dir = RunDirectory(path)
    config = run_dir.read_config()
    checkpoint = run_dir.load_checkpoint()
    kg = load_graph(config)
    model = build_model(config, kg)
    sampler = build_sampler(config.sampler, config, kg, model)
    try:
        model.load_state_dict(checkpoint["model"])
        if checkpoint.get("sampler"):
            sampler.load_state_dict(checkpoint["sampler"])
    except (RuntimeError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0]
        raise DansError(
            f"{run_dir.path}: the checkpoint does not fit its config.toml ({reason})"
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
    )
