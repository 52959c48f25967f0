"""Speed on 2 CPU threads: UMLS epoch and WN18RR full-graph step (uniform and DANS), WN18RR
evaluation.

    python benchmarks/speed.py --out benchmarks/results/speed.json

Configuration throughout: RGCN (2 layers, 4 bases, d 100) + DistMult, batch 1000, 20 negatives,
as in DESIGN.md section 4; the uniform sampler unless DANS is named (DANS with its defaults).
Each figure is the median of several repetitions after a warm-up, timed in this one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import dans
from dans.builders import build_model, build_sampler, load_graph
from dans.evaluation.ranking import rank_triples
from dans.training.trainer import Trainer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trainer_for(config: dans.TrainConfig) -> Trainer:
    kg = load_graph(config)
    torch.manual_seed(config.seed)
    model = build_model(config, kg)
    sampler = build_sampler(config.sampler, config, kg, model)
    return Trainer(model, kg, config, sampler, sampler, torch.device("cpu"), progress=False)


def umls_epoch(repeats: int, sampler: str = "uniform") -> float:
    trainer = trainer_for(dans.TrainConfig(sampler=sampler, device="cpu"))
    return median_seconds(lambda: trainer.train_epoch(trainer.sampler), repeats)


def wn18rr_step(repeats: int, sampler: str = "uniform") -> float:
    config = dans.TrainConfig(data_dir=str(SHARED / "wn18rr"), sampler=sampler, device="cpu")
    trainer = trainer_for(config)
    batch = trainer.train_triples[:1000]
    return median_seconds(lambda: trainer.step(batch, trainer.sampler), repeats)


def wn18rr_evaluation(repeats: int) -> dict[str, float]:
    trainer = trainer_for(dans.TrainConfig(data_dir=str(SHARED / "wn18rr"), device="cpu"))
    model, kg = trainer.model.eval(), trainer.kg
    with torch.no_grad():
        entities, relations = model()
        test = kg.test
        decoder = model.decoder
        queries = torch.cat(
            [
                entities[test[:, 0]] * relations[test[:, 1]],
                entities[test[:, 2]] * decoder.inverse(relations[test[:, 1]]),
            ]
        )

        def product() -> None:
            queries @ entities.T

        def ranking() -> None:
            for predict_head in (False, True):
                rank_triples(test, entities, relations, decoder, kg.known_triples, predict_head)

        matmul = median_seconds(product, repeats)
        evaluation = median_seconds(ranking, repeats)
    return {
        "queries": len(queries),
        "matmul_seconds": matmul,
        "evaluation_seconds": evaluation,
        "ratio": evaluation / matmul,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__}
    result["umls_epoch_seconds"] = umls_epoch(args.repeats)
    result["umls_dans_epoch_seconds"] = umls_epoch(args.repeats, "dans")
    result["umls_dans_ratio"] = result["umls_dans_epoch_seconds"] / result["umls_epoch_seconds"]
    print(
        f"UMLS epoch: uniform {result['umls_epoch_seconds']:.3f} s, DANS "
        f"{result['umls_dans_epoch_seconds']:.3f} s ({result['umls_dans_ratio']:.2f}x)",
        flush=True,
    )
    if (SHARED / "wn18rr").is_dir():
        result["wn18rr_step_seconds"] = wn18rr_step(args.repeats)
        result["wn18rr_dans_step_seconds"] = wn18rr_step(args.repeats, "dans")
        result["wn18rr_dans_ratio"] = (
            result["wn18rr_dans_step_seconds"] / result["wn18rr_step_seconds"]
        )
        print(
            f"WN18RR full-graph step: uniform {result['wn18rr_step_seconds']:.3f} s, DANS "
            f"{result['wn18rr_dans_step_seconds']:.3f} s ({result['wn18rr_dans_ratio']:.2f}x)",
            flush=True,
        )
        result["wn18rr_test_evaluation"] = wn18rr_evaluation(args.repeats)
        ev = result["wn18rr_test_evaluation"]
        print(
            f"WN18RR test evaluation: {ev['evaluation_seconds']:.3f} s vs matrix product "
            f"{ev['matmul_seconds']:.3f} s ({ev['ratio']:.2f}x)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
