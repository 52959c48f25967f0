"""The same RGCN + DistMult training in PyKEEN and in dans on UMLS: seconds per epoch and test
metrics side by side.

    pykeen-venv/bin/python benchmarks/compare_pykeen.py --epochs 300 --seed 1 --threads 2 \
        --out benchmarks/results/compare_pykeen.json

PyKEEN is not a dependency of this project; run the script from a separate environment that has
both, with torch installed first so pip keeps the CPU build:

    python3 -m venv pykeen-venv
    pykeen-venv/bin/pip install torch==2.13.0
    pykeen-venv/bin/pip install pykeen==1.11.1
    pykeen-venv/bin/pip install -e .

Without PyKEEN the script says so in one line and exits with status 1.

Both sides train a 2-layer RGCN encoder (d 100, basis decomposition with 4 bases, ReLU between
layers, edge dropout 0.4, dropout 0.2) with a DistMult decoder on the same UMLS id triples (dans
loads them; PyKEEN is handed the same tensors), batch 1000, 20 uniform negatives per positive
(PyKEEN's "basic" sampler), binary cross-entropy with logits averaged over positive and negative
triples (PyKEEN: sLCWA with loss="BCEWithLogits"), Adam with lr 3e-3, gradient-norm clipping at
1.0 (PyKEEN: its GradientNormClippingTrainingCallback, see ``gradient_clipping``), message passing
over the whole training graph at every step (PyKEEN: no "schlichtkrull" subgraph sampler),
``--threads`` torch threads, the same ``--seed``. Both run exactly ``--epochs`` epochs: no
early stopping and no evaluation during training, so the work is the same and the timed loop is
training only (seconds per epoch = wall time of all epochs / epochs). The final weights are
evaluated on test, filtered by train + valid + test, head and tail queries, realistic
(tie-aware) ranks: PyKEEN's RankBasedEvaluator(filtered=True), "both.realistic" metrics; dans's
``evaluate``.

Differences that remain, because PyKEEN's RGCN has no option for them:

- Dropout: dans drops the ReLU output between layers (p 0.2, not after the last layer). PyKEEN
  has no such dropout; its nearest is ``self_loop_dropout``, which drops the self-loop message
  in every layer, set to 0.2.
- Bases: dans shares 4 basis matrices per layer across the 2R edge types (forward and inverse).
  PyKEEN decomposes forward and backward edges separately, with ``num_bases`` each, so a layer
  has 8 basis matrices.
- Normalisation: dans averages the messages of each (destination, edge type) pair, in both
  directions. PyKEEN's closest weighting, "inverse_in_degree", weights an edge by 1 / (in-degree
  of its tail under its relation) and reuses that weight for the backward message, which is
  then not a mean.
- L2: dans adds ``--l2`` x (mean squared encoder output over all entities + mean squared
  relation embedding); its default is 0.01. PyKEEN's RGCN has no regulariser by default, and its
  regularisers only see each batch's looked-up vectors, once per lookup, so none reproduces this
  term; PyKEEN runs without one. ``--l2 0`` removes the difference.
- Negatives: dans picks the replaced side of each negative at random and may draw the true
  entity; PyKEEN replaces the head in the first half of a batch's negatives and the tail in the
  second half (so all 20 negatives of a positive share a side) and never draws the true entity.
- Initialisation: dans uses Xavier-uniform for every weight; PyKEEN uses Xavier-normal bases,
  L1-normalised uniform coefficients and ``nn.Linear``'s default for the self-loop weight (and
  its ``train`` re-initialises the entity and relation embeddings but not the RGCN layers).
- Random streams: one seed does not give the two libraries the same weights or negatives, so
  compare MRR over several seeds before reading much into a small difference.
- Timing: PyKEEN's ``train`` call also resets the weights and builds its data loader (once);
  dans's timed loop holds only the epochs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import dans
from dans.allocator import reuse_freed_memory
from dans.builders import load_graph
from dans.data.graph import KnowledgeGraph
from dans.pipeline import build_trainer

if TYPE_CHECKING:
    from pykeen.models import RGCN
    from pykeen.training.callbacks import TrainingCallback

HITS_AT = (1, 3, 10)
# PyKEEN's evaluation batch (queries scored at once); UMLS is small, so one fixed size does.
PYKEEN_EVAL_BATCH = 256
# Log messages every run here triggers, by logger: PyKEEN's weight reset skips the RGCN layers
# (they keep their initialisation from construction), it suggests subgraph sampling, which
# neither side uses on purpose, and its evaluation's batch-size helper distrusts CPU tensors.
EXPECTED_PYKEEN_WARNINGS = {
    "pykeen.nn.message_passing": "Layers %s has parameters",
    "pykeen.training.training_loop": "Using RGCN without graph-based sampling",
    "torch_max_mem.api": "Encountered tensors on",
}


def pykeen_version() -> str | None:
    """PyKEEN's version, or None when it cannot be imported here."""
    try:
        import pykeen
    except ImportError:
        return None
    return pykeen.get_version()


def dans_config(args: argparse.Namespace) -> dans.TrainConfig:
    """The shared configuration, pinned here so a change of dans's defaults cannot move it."""
    return dans.TrainConfig(
        data_dir=args.data_dir,
        encoder="rgcn",
        decoder="distmult",
        sampler="uniform",
        dim=100,
        layers=2,
        bases=4,
        dropout=0.2,
        edge_dropout=0.4,
        negatives=20,
        batch_size=1000,
        lr=3e-3,
        l2=args.l2,
        grad_clip=1.0,
        epochs=args.epochs,
        # Recorded in the JSON only: fit(), where early stopping lives, is not called.
        patience=0,
        seed=args.seed,
        device="cpu",
    ).validate()


def pykeen_model_kwargs(config: dans.TrainConfig) -> dict[str, Any]:
    """RGCN constructor arguments matching ``config`` as closely as PyKEEN allows."""
    return {
        "embedding_dim": config.model.dim,
        "num_layers": config["layers"],
        "interaction": "DistMult",
        "decomposition": "bases",
        "decomposition_kwargs": {"num_bases": config["bases"]},
        # PyKEEN's default is no activation at all; dans applies ReLU between layers.
        "activation": "relu",
        # Per-relation inverse in-degree is PyKEEN's nearest to dans's per-pair mean.
        "edge_weighting": "inverse_in_degree",
        "edge_dropout": config["edge_dropout"],
        "self_loop_dropout": config["dropout"],
        "loss": "BCEWithLogits",
        "random_seed": config.runtime.seed,
    }


def pykeen_train_kwargs(config: dans.TrainConfig) -> dict[str, Any]:
    """``train`` arguments; gradient clipping comes as a callback, see :func:`gradient_clipping`."""
    return {
        "num_epochs": config.training.epochs,
        "batch_size": config.training.batch_size,
        # dans trains on the last, smaller batch too.
        "drop_last": False,
        "use_tqdm": False,
        "pin_memory": False,
    }


def gradient_clipping(max_norm: float) -> TrainingCallback:
    """PyKEEN's own gradient-norm clipping, passed to ``train`` as a callback.

    In PyKEEN 1.11.1, ``train(gradient_clipping_max_norm=...)`` fails on the first batch
    ("Callback was never initialized"): it hands the clipping callback to the optimizer callback
    without registering it with the loop. A callback passed to ``train`` is registered, and the
    loop calls its ``pre_step`` after the backward pass and before the optimizer's step.
    """
    from pykeen.training.callbacks import GradientNormClippingTrainingCallback

    return GradientNormClippingTrainingCallback(max_norm=max_norm)


def dropping(prefix: str) -> Callable[[logging.LogRecord], bool]:
    """A logging filter that drops the records whose message starts with ``prefix``."""
    return lambda record: not str(record.msg).startswith(prefix)


def hide_expected_pykeen_warnings() -> None:
    """Silence the warnings every run of this comparison triggers, so real ones stand out."""
    for name, prefix in EXPECTED_PYKEEN_WARNINGS.items():
        logging.getLogger(name).addFilter(dropping(prefix))
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


def metrics_row(mrr: float, hits: dict[int, float]) -> dict[str, float]:
    return {"mrr": mrr, **{f"hits@{k}": hits[k] for k in HITS_AT}}


def run_pykeen(config: dans.TrainConfig, kg: KnowledgeGraph) -> dict[str, Any]:
    """Train and test PyKEEN's RGCN on ``kg``'s id triples; time the training call only."""
    from pykeen.models import RGCN
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import CoreTriplesFactory

    training = CoreTriplesFactory.create(
        mapped_triples=kg.train, num_entities=kg.num_entities, num_relations=kg.num_relations
    )
    model_kwargs = pykeen_model_kwargs(config)
    train_kwargs = pykeen_train_kwargs(config)
    model = RGCN(triples_factory=training, **model_kwargs)
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=training,
        optimizer="Adam",
        optimizer_kwargs={"lr": config.training.lr},
        negative_sampler="basic",
        negative_sampler_kwargs={"num_negs_per_pos": config.training.negatives},
        # Its batch-size probing would run extra training steps inside the timed train() call.
        automatic_memory_optimization=False,
    )
    callbacks = (
        [gradient_clipping(config.training.grad_clip)] if config.training.grad_clip > 0 else []
    )
    start = time.perf_counter()
    losses = loop.train(triples_factory=training, callbacks=callbacks, **train_kwargs)
    seconds = time.perf_counter() - start
    return {
        "model_kwargs": model_kwargs,
        "train_kwargs": train_kwargs,
        "gradient_clipping_max_norm": config.training.grad_clip or None,
        "train_seconds": seconds,
        "seconds_per_epoch": seconds / config.training.epochs,
        "final_loss": losses[-1],
        "test": pykeen_test(model, kg),
    }


def pykeen_test(model: RGCN, kg: KnowledgeGraph) -> dict[str, float]:
    """Filtered (train + valid + test), both-direction test metrics on realistic ranks."""
    from pykeen.evaluation import RankBasedEvaluator

    results = RankBasedEvaluator(filtered=True).evaluate(
        model,
        kg.test,
        batch_size=PYKEEN_EVAL_BATCH,
        use_tqdm=False,
        additional_filter_triples=[kg.train, kg.valid],
    )

    def metric(name: str) -> float:
        return float(results.get_metric(f"both.realistic.{name}"))

    return metrics_row(
        metric("inverse_harmonic_mean_rank"), {k: metric(f"hits_at_{k}") for k in HITS_AT}
    )


def run_dans(config: dans.TrainConfig, kg: KnowledgeGraph) -> dict[str, Any]:
    """Train and test dans on ``kg``; the epochs are timed through ``train_epoch`` so no
    validation runs inside the timed loop."""
    trainer = build_trainer(config, kg, torch.device(config.runtime.device))
    sampler = trainer.sampler
    start = time.perf_counter()
    loss: float | None = None
    for _ in range(config.training.epochs):
        loss = trainer.train_epoch(sampler).means.get("loss")
    seconds = time.perf_counter() - start
    result = dans.evaluate(trainer.model, kg, "test", ties="realistic").to_dict()
    return {
        "config": config.to_dict(),
        "train_seconds": seconds,
        "seconds_per_epoch": seconds / config.training.epochs,
        "final_loss": loss,
        "skipped_steps": trainer.skipped_steps,
        "test": metrics_row(result["mrr"], {k: result[f"hits@{k}"] for k in HITS_AT}),
    }


def report_line(name: str, side: dict[str, Any]) -> str:
    test = side["test"]
    hits = ", ".join(f"Hits@{k} {test[f'hits@{k}']:.4f}" for k in HITS_AT)
    return (
        f"{name}: {side['seconds_per_epoch']:.3f} s per epoch; test MRR {test['mrr']:.4f}, {hits}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--l2",
        type=float,
        default=dans.TrainConfig.specs()["l2"].default,
        help="dans's L2 weight (0: off)",
    )
    parser.add_argument(
        "--data-dir", default="", help="train/valid/test folder (default: dans's bundled UMLS)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compare_pykeen.json"))
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    version = pykeen_version()
    if version is None:
        sys.exit(
            f"PyKEEN is not importable from {sys.executable}; run this script from an "
            "environment that has pykeen and dans installed."
        )
    hide_expected_pykeen_warnings()
    torch.set_num_threads(args.threads)
    # As the dans command does (see dans.allocator), for both libraries alike.
    kept = reuse_freed_memory()
    config = dans_config(args)
    kg = load_graph(config)
    result: dict[str, Any] = {
        "epochs": args.epochs,
        "seed": args.seed,
        "threads": args.threads,
        "reuses_freed_memory": kept,
        "torch": torch.__version__,
        "pykeen_version": version,
        "dans_version": dans.__version__,
    }
    result["pykeen"] = run_pykeen(config, kg)
    print(report_line(f"PyKEEN {version}", result["pykeen"]), flush=True)
    result["dans"] = run_dans(config, kg)
    print(report_line(f"dans {dans.__version__}", result["dans"]), flush=True)
    result["seconds_per_epoch_ratio"] = (
        result["dans"]["seconds_per_epoch"] / result["pykeen"]["seconds_per_epoch"]
    )
    result["mrr_difference"] = result["dans"]["test"]["mrr"] - result["pykeen"]["test"]["mrr"]
    print(
        f"dans / PyKEEN seconds per epoch: {result['seconds_per_epoch_ratio']:.2f}x; "
        f"test MRR dans - PyKEEN: {result['mrr_difference']:+.4f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
