"""Training steps on a synthetic power-law graph of any size: the seconds of a training epoch
(or of its first --steps steps) and the process's peak memory, as JSON.

    python benchmarks/scale.py --entities 1000000 --triples 5000000 --batch-size 10000 \
        --set encoder=lookup --set decoder=distmult --out benchmarks/results/scale/1m.json

Every ``--set KEY=VALUE`` is a training setting, as ``dans train --KEY VALUE`` sets it. With
``--steps N`` only the first N steps of the epoch run, and the epoch's time is reported as
measured over them, scaled to the epoch's steps, and named so. With ``--rank-queries N`` the
trained model then ranks the first N test triples (both sides) against every entity, filtered,
in blocks of the default memory bound, and against ``--candidates`` drawn entities (the sampled
protocol); both times are reported, and scaled to the whole test split.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from itertools import islice
from pathlib import Path

import torch

from dans.allocator import reuse_freed_memory
from dans.config import TrainConfig
from dans.data.graph import SPLITS, KnowledgeGraph
from dans.data.synthetic import power_law_graph
from dans.errors import DansError
from dans.evaluation.ranking import rank_against_sample, rank_triples
from dans.pipeline import build_trainer
from dans.training import Trainer
from dans.training.footprint import check_fits
from dans.version import __version__
from settings import setting


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_splits(kg: KnowledgeGraph, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        triples = kg.split(split).tolist()
        text = "".join(f"e{h}\tr{r}\te{t}\n" for h, r, t in triples)
        (folder / f"{split}.txt").write_text(text)


def rank_times(trainer: Trainer, kg: KnowledgeGraph, queries: int, candidates: int) -> dict:
    """Seconds to rank the first ``queries`` test triples, both sides, in full and sampled."""
    entities, relations = trainer.model.inference()
    triples = kg.test[:queries]
    found: dict[str, object] = {"ranked_queries": 2 * len(triples), "candidates": candidates}
    for name in ("full", "sampled"):
        start = time.perf_counter()
        for predict_head in (False, True):
            common = (triples, entities, relations, trainer.model.decoder, kg.known_triples)
            if name == "full":
                rank_triples(*common, predict_head)
            else:
                generator = torch.Generator().manual_seed(0)
                rank_against_sample(*common, predict_head, candidates, generator)
        seconds = time.perf_counter() - start
        found[f"{name}_rank_seconds"] = round(seconds, 2)
        found[f"{name}_rank_seconds_whole_test"] = round(seconds * len(kg.test) / len(triples), 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--relations", type=int, default=100)
    parser.add_argument("--triples", type=int, default=5_000_000, help="train triples")
    parser.add_argument("--held-out", type=int, default=50_000, help="valid and test triples each")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--steps", type=int, help="time only the epoch's first N steps")
    parser.add_argument("--set", type=setting, action="append", default=[], dest="settings")
    parser.add_argument("--rank-queries", type=int, default=0, help="test triples to rank")
    parser.add_argument("--candidates", type=int, default=1000, help="of the sampled protocol")
    parser.add_argument("--seed", type=int, default=0, help="seed of the graph")
    parser.add_argument(
        "--write-splits",
        type=Path,
        metavar="DIR",
        help="write the graph's train.txt, valid.txt and test.txt into DIR (for `dans train "
        "--data-dir DIR`, under torchrun too) and train nothing",
    )
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args()
    if args.out is None and args.write_splits is None:
        parser.error("give --out, or --write-splits")
    # As the dans command does (see dans.allocator).
    kept = reuse_freed_memory()

    start = time.perf_counter()
    kg = power_law_graph(
        args.entities, args.relations, args.triples, args.held_out, args.held_out, seed=args.seed
    )
    graph_seconds = time.perf_counter() - start
    if args.write_splits is not None:
        write_splits(kg, args.write_splits)
        return
    settings = {"batch_size": args.batch_size, "device": "cpu", **dict(args.settings)}
    start = time.perf_counter()
    try:
        # The checks `dans train` makes before a run starts, in the one line it would print.
        config = TrainConfig(**settings).validate()
        check_fits(config, kg, torch.device("cpu"))
        trainer = build_trainer(config, kg, torch.device("cpu"))
    except DansError as exc:
        sys.exit(f"scale.py: error: {exc}")
    build_seconds = time.perf_counter() - start
    memory_before = peak_rss_gib()

    steps_in_epoch = math.ceil(len(kg.train) / args.batch_size)
    order = torch.randperm(len(kg.train), generator=trainer.order_generator)
    steps = steps_in_epoch if args.steps is None else min(args.steps, steps_in_epoch)
    start = time.perf_counter()
    for batch, message_triples in islice(trainer.batches(order), steps):
        trainer.step(batch, trainer.sampler, message_triples)
    seconds = time.perf_counter() - start

    ranking = (
        rank_times(trainer, kg, args.rank_queries, args.candidates) if args.rank_queries else {}
    )
    found = {
        "entities": kg.num_entities,
        "relations": kg.num_relations,
        "train_triples": len(kg.train),
        "settings": settings,
        "graph_seconds": round(graph_seconds, 2),
        "build_seconds": round(build_seconds, 2),
        "steps_timed": steps,
        "steps_in_epoch": steps_in_epoch,
        "seconds_per_step": round(seconds / steps, 4),
        "epoch_seconds": round(seconds / steps * steps_in_epoch, 1),
        "epoch_seconds_measured": steps == steps_in_epoch,
        "peak_rss_gib_before_training": round(memory_before, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        **ranking,
        "threads": torch.get_num_threads(),
        "reuses_freed_memory": kept,
        "torch": torch.__version__,
        "dans": __version__,
        "machine": platform.machine(),
        "command": " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
