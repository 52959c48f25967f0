"""Training and evaluation speed: UMLS epochs, full-graph and subgraph steps on WN18RR and
FB15k-237, an epoch of each large-graph recipe with uniform negatives and with DANS, an epoch
with every entity as a negative against uniform's (UMLS, WN18RR and NELL-995), WN18RR
evaluation against its bare matrix product, RotatE's negatives and ranking on WN18RR against
the plainer ways, and the time and peak memory of FB15k-237 and NELL-995 evaluation under two
memory bounds.

    DANS_DATA_DIR=DATASETS python benchmarks/speed.py --sections umls wn18rr fb15k subgraph \
        evaluation memory --out benchmarks/results/speed.json
    python benchmarks/speed.py --sections umls --out /tmp/speed.json

DATASETS is a folder that holds the named datasets (see `dans datasets`); UMLS comes with dans.

The recipes' epochs use each recipe's own settings. Configuration elsewhere: RGCN (2 layers, 4
bases, d 100, edge dropout 0.4) + DistMult, batch 1000, 20 negatives;
the uniform sampler unless DANS is named (DANS with its defaults). Models are untrained: speed
does not depend on the weights. Each time is the median of ``--repeats`` repetitions after a
warm-up, all in this one process; the memory figures come from a fresh process per setting.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from unittest import mock

import torch

import dans
from dans.allocator import reuse_freed_memory
from dans.builders import load_graph
from dans.evaluation.ranking import DEFAULT_MEMORY_ELEMENTS, rank_triples
from dans.models import decoders
from dans.models.decoders import DistanceDecoder
from dans.pipeline import build_trainer
from dans.recipes import recipe_names
from dans.training.trainer import Trainer

# The RGCN link-prediction reference samples 30,000 edges per step.
SUBGRAPH_EDGES = 30_000
MEMORY_BOUNDS_MB = (16, 256)


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    def timed() -> float:
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    timed()  # warm-up
    return statistics.median(timed() for _ in range(repeats))


def trainer_for(device: torch.device, **settings: object) -> Trainer:
    return trainer_of(dans.TrainConfig(device=str(device), **settings))


def trainer_of(config: dans.TrainConfig) -> Trainer:
    return build_trainer(config, load_graph(config), torch.device(config.runtime.device))


def epoch_seconds(trainer: Trainer, repeats: int, device: torch.device) -> float:
    """The median time of a whole training epoch of ``trainer``."""
    return median_seconds(lambda: trainer.train_epoch(trainer.sampler), repeats, device)


def first_step_seconds(trainer: Trainer, repeats: int, device: torch.device) -> tuple[float, int]:
    """The median time of the first step of a shuffled epoch of ``trainer``, and its positives."""
    order = torch.randperm(len(trainer.train_triples), device=device)
    block, messages = next(trainer.batches(order))
    step = median_seconds(lambda: trainer.step(block, trainer.sampler, messages), repeats, device)
    return step, len(block)


def stepped_epoch_seconds(trainer: Trainer, repeats: int, device: torch.device) -> float:
    """The median time of one step of ``trainer`` (a random batch) times an epoch's steps."""
    step, positives = first_step_seconds(trainer, repeats, device)
    return step * math.ceil(len(trainer.train_triples) / positives)


def umls(repeats: int, device: torch.device) -> dict[str, float]:
    """One epoch over UMLS's 5,216 training triples (6 mini-batches), uniform and DANS."""
    return against_uniform(
        "UMLS",
        "dans",
        lambda sampler: epoch_seconds(trainer_for(device, sampler=sampler), repeats, device),
    )


def against_uniform(
    title: str, sampler: str, time_epoch: Callable[[str], float]
) -> dict[str, float]:
    """``time_epoch`` of uniform and of ``sampler``, and the second as a multiple of the first
    (``{sampler}_ratio``), printed as they come."""
    row = {f"{name}_epoch_seconds": time_epoch(name) for name in ("uniform", sampler)}
    row[f"{sampler}_ratio"] = row[f"{sampler}_epoch_seconds"] / row["uniform_epoch_seconds"]
    print(
        f"{title}, one epoch: uniform {row['uniform_epoch_seconds']:.2f} s, {sampler} "
        f"{row[f'{sampler}_epoch_seconds']:.2f} s ({row[f'{sampler}_ratio']:.2f}x)",
        flush=True,
    )
    return row


def full_graph_step(name: str, sampler: str, repeats: int, device: torch.device) -> float:
    """One training step on 1,000 positives with message passing over the whole graph."""
    trainer = trainer_for(device, dataset=name, sampler=sampler)
    batch = trainer.train_triples[:1000]
    return median_seconds(lambda: trainer.step(batch, trainer.sampler), repeats, device)


def subgraph_step(name: str, repeats: int, device: torch.device) -> float:
    """One subgraph step: 30,000 sampled positives, messages over half of them."""
    trainer = trainer_for(device, dataset=name, subgraph_edges=SUBGRAPH_EDGES)
    return first_step_seconds(trainer, repeats, device)[0]


def wn18rr(repeats: int, device: torch.device) -> dict[str, float]:
    result = {
        "uniform_step_seconds": full_graph_step("wn18rr", "uniform", repeats, device),
        "dans_step_seconds": full_graph_step("wn18rr", "dans", repeats, device),
    }
    result["dans_ratio"] = result["dans_step_seconds"] / result["uniform_step_seconds"]
    print(
        f"WN18RR full-graph step: uniform {result['uniform_step_seconds']:.3f} s, DANS "
        f"{result['dans_step_seconds']:.3f} s ({result['dans_ratio']:.2f}x)",
        flush=True,
    )
    return result


def fb15k(repeats: int, device: torch.device) -> dict[str, float]:
    seconds = full_graph_step("fb15k-237", "uniform", repeats, device)
    print(f"FB15k-237 full-graph step: {seconds:.3f} s", flush=True)
    return {"uniform_step_seconds": seconds}


def subgraph(repeats: int, device: torch.device) -> dict[str, float]:
    result: dict[str, float] = {"edges": SUBGRAPH_EDGES}
    for name in ("wn18rr", "fb15k-237"):
        result[f"{name}_step_seconds"] = seconds = subgraph_step(name, repeats, device)
        print(
            f"{name} subgraph step ({SUBGRAPH_EDGES} positives, messages over half): "
            f"{seconds:.3f} s",
            flush=True,
        )
    return result


def recipes(repeats: int, device: torch.device) -> dict[str, dict[str, float]]:
    """One training epoch of each large-graph recipe, with uniform negatives and with DANS."""

    def recipe_epoch_seconds(name: str, sampler: str) -> float:
        return epoch_seconds(recipe_trainer(name, sampler, device), repeats, device)

    return {
        name: against_uniform(f"recipe {name}", "dans", partial(recipe_epoch_seconds, name))
        for name in recipe_names()
    }


def recipe_trainer(name: str, sampler: str, device: torch.device) -> Trainer:
    """A trainer of recipe ``name`` with ``sampler``."""
    return trainer_of(dans.recipe(name, sampler=sampler, device=str(device)))


def all_entities(repeats: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Every entity as a negative against uniform negatives: an epoch of UMLS with each decoder
    (the defaults), and a step of the WN18RR and NELL-995 recipes with DistMult (a random batch
    of the recipe's size) times the recipe's steps per epoch."""
    timers: dict[str, Callable[[str], float]] = {}
    for decoder in ("distmult", "complex", "rotate"):
        timers[f"umls {decoder}"] = lambda sampler, decoder=decoder: epoch_seconds(
            trainer_for(device, sampler=sampler, decoder=decoder), repeats, device
        )
    for name in ("wn18rr", "nell-995"):
        timers[f"{name} recipe"] = lambda sampler, name=name: stepped_epoch_seconds(
            recipe_trainer(name, sampler, device), repeats, device
        )
    return {title: against_uniform(title, "all-entities", timer) for title, timer in timers.items()}


def evaluation(repeats: int, device: torch.device) -> dict[str, float]:
    """WN18RR filtered test ranking, both directions, against the matrix product behind it:
    once as one product and once in the evaluation's own blocks."""
    trainer = trainer_for(device, dataset="wn18rr")
    model, kg = trainer.model.eval(), trainer.kg
    with torch.no_grad():
        entities, relations = model()
        test = kg.test.to(device)
        decoder = model.decoder
        queries = torch.cat(
            [
                decoder.compose(entities[test[:, 0]], relations[test[:, 1]]),
                decoder.compose(entities[test[:, 2]], decoder.inverse(relations[test[:, 1]])),
            ]
        )
        rows = DEFAULT_MEMORY_ELEMENTS // len(entities)

        def ranking(memory_elements: int = DEFAULT_MEMORY_ELEMENTS) -> None:
            for predict_head in (False, True):
                rank_triples(
                    test,
                    entities,
                    relations,
                    decoder,
                    kg.known_triples,
                    predict_head,
                    memory_elements,
                )

        result = {
            "queries": len(queries),
            "matmul_seconds": median_seconds(lambda: queries @ entities.T, repeats, device),
            "blocked_matmul_seconds": median_seconds(
                lambda: [block @ entities.T for block in queries.split(rows)], repeats, device
            ),
            "evaluation_seconds": median_seconds(ranking, repeats, device),
            "evaluation_seconds_256mb_blocks": median_seconds(
                lambda: ranking(16 * DEFAULT_MEMORY_ELEMENTS), repeats, device
            ),
        }
    result["ratio"] = result["evaluation_seconds"] / result["matmul_seconds"]
    result["ratio_to_blocked"] = result["evaluation_seconds"] / result["blocked_matmul_seconds"]
    print(
        f"WN18RR test evaluation ({len(queries)} queries): {result['evaluation_seconds']:.3f} s; "
        f"matrix product {result['matmul_seconds']:.3f} s ({result['ratio']:.2f}x), in "
        f"{rows}-row blocks {result['blocked_matmul_seconds']:.3f} s "
        f"({result['ratio_to_blocked']:.2f}x); with 256 MB blocks instead of 16 MB: "
        f"{result['evaluation_seconds_256mb_blocks']:.3f} s",
        flush=True,
    )
    return result


def rotate(repeats: int, device: torch.device) -> dict[str, float]:
    """RotatE on WN18RR, on random embeddings: the negatives of a recipe step (10,000
    positives x 20, forward and backward) through RotatE's written-out backward and through
    autograd over the same formula, and the filtered ranking of 500 test triples (both
    directions) in the CPU's blocks of 512 entities and in blocks that span every entity."""
    trainer = trainer_for(device, dataset="wn18rr", decoder="rotate")
    kg, decoder = trainer.kg, trainer.model.decoder
    generator = torch.Generator(device).manual_seed(0)
    entities = torch.randn(kg.num_entities, 100, device=device, generator=generator)
    relations = decoder.relations().detach()
    positives = trainer.train_triples[:10_000]
    ids = torch.randint(kg.num_entities, (len(positives), 20), device=device, generator=generator)
    head_replaced = torch.rand(ids.shape, device=device, generator=generator) < 0.5
    rows = [entities[positives[:, 0]], relations[positives[:, 1]], entities[positives[:, 2]]]
    inputs = [tensor.clone().requires_grad_() for tensor in (*rows, entities[ids])]

    def negatives(distances: Callable[..., torch.Tensor]) -> None:
        heads, rels, tails, candidates = inputs
        queries = decoder.both_queries(heads, rels, tails, 1)
        distances(queries, candidates, head_replaced).sum().backward()

    def ranking() -> None:
        for predict_head in (False, True):
            rank_triples(test, entities, relations, decoder, kg.known_triples, predict_head)

    test = kg.test[:500].to(device)
    result = {
        "negatives_seconds": median_seconds(
            lambda: negatives(decoder.corrupted_distances), repeats, device
        ),
        "negatives_seconds_autograd": median_seconds(
            lambda: negatives(partial(DistanceDecoder.corrupted_distances, decoder)),
            repeats,
            device,
        ),
    }
    with torch.no_grad():
        result["ranking_seconds"] = median_seconds(ranking, repeats, device)
        # The blocks an accelerator takes: every entity, at most _BROADCAST_BUDGET elements.
        with (
            mock.patch.object(decoders, "_CPU_BLOCK_ENTITIES", kg.num_entities),
            mock.patch.object(decoders, "_CPU_BROADCAST_BUDGET", decoders._BROADCAST_BUDGET),
        ):
            result["ranking_seconds_blocks_of_every_entity"] = median_seconds(
                ranking, repeats, device
            )
    result["negatives_ratio"] = result["negatives_seconds"] / result["negatives_seconds_autograd"]
    result["ranking_ratio"] = (
        result["ranking_seconds"] / result["ranking_seconds_blocks_of_every_entity"]
    )
    print(
        f"WN18RR RotatE: a step's negatives {result['negatives_seconds']:.3f} s, through "
        f"autograd {result['negatives_seconds_autograd']:.3f} s "
        f"({result['negatives_ratio']:.2f}x); ranking 1,000 queries "
        f"{result['ranking_seconds']:.2f} s, in blocks of every entity "
        f"{result['ranking_seconds_blocks_of_every_entity']:.2f} s "
        f"({result['ranking_ratio']:.2f}x)",
        flush=True,
    )
    return result


def memory(repeats: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Test evaluation of FB15k-237 and NELL-995 under each memory bound, one process each."""
    result = {}
    for name in ("fb15k-237", "nell-995"):
        for bound in MEMORY_BOUNDS_MB:
            command = [sys.executable, __file__, "--probe", name, str(bound)]
            command += ["--device", str(device)]
            found = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
            result[f"{name}@{bound}MB"] = found
            before, peak = found["resident_before_mb"], found["peak_mb"]
            forward = found["encoder_forward_peak_mb"]
            print(
                f"{name} test evaluation, --eval-memory-mb {bound}: {found['seconds']:.2f} s; "
                f"resident before {before:.0f} MB, peak {peak:.0f} MB (+{peak - before:.0f}; "
                f"the encoder's forward pass alone: +{forward - before:.0f})",
                flush=True,
            )
    return result


def probe(name: str, bound_mb: float, device: torch.device) -> None:
    """Print one evaluation's time and this process's resident memory before and at its peak."""
    trainer = trainer_for(device, dataset=name)
    model = trainer.model.eval()
    with torch.no_grad():
        model()  # the first forward pass allocates what every later one reuses
    before = _reset_peak()
    with torch.no_grad():
        model()
    forward_peak = _status_mb("VmHWM")
    _reset_peak()
    start = time.perf_counter()
    dans.evaluate(model, trainer.kg, "test", memory_mb=bound_mb)
    report = {
        "seconds": time.perf_counter() - start,
        "resident_before_mb": before,
        "encoder_forward_peak_mb": forward_peak,
        "peak_mb": _status_mb("VmHWM"),
    }
    print(json.dumps(report))


def _reset_peak() -> float:
    """Restart this process's peak resident-memory count; returns the resident MB now."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    """A /proc/self/status memory field (reported in kB), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


SECTIONS = {
    "umls": umls,
    "wn18rr": wn18rr,
    "fb15k": fb15k,
    "subgraph": subgraph,
    "recipes": recipes,
    "all_entities": all_entities,
    "evaluation": evaluation,
    "rotate": rotate,
    "memory": memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    parser.add_argument("--probe", nargs=2, metavar=("DATASET", "MB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # As the dans command does (see dans.allocator).
    kept = reuse_freed_memory()
    device = torch.device(args.device)
    if args.probe:
        probe(args.probe[0], float(args.probe[1]), device)
        return
    result: dict[str, object] = {
        "threads": args.threads,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "reuses_freed_memory": kept,
    }
    for name in args.sections:
        result[name] = SECTIONS[name](args.repeats, device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
