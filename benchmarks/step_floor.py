"""How close a large-graph recipe's training step comes to this CPU's own limits: the step's
floating-point work (every matrix product of its forward and backward passes, dense or sparse,
two operations per multiply-add), the bytes its operators read and write, its measured time,
the machine's peak from one large matrix product and one large copy, and the operators the
step's time goes to; as JSON.

    python benchmarks/step_floor.py --out benchmarks/results/step_floor.json

Uniform negatives with RGCN + DistMult, each recipe's own settings, an untrained model (speed
does not depend on the weights), ``--threads`` torch threads. The bytes are what the operators
hand each other (every tensor argument read and every result written, once per operator): memory
traffic as the operators see it, before caches absorb any of it. Time it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import dans
from dans.allocator import reuse_freed_memory
from dans.files import write_atomic
from speed import median_seconds, trainer_of

RECIPES = ("wn18rr", "fb15k-237")
# The operators named in the breakdown of a step's time.
TOP_OPERATORS = 8


class OperatorCounter(TorchDispatchMode):
    """Adds up, over the operators run under it, the bytes of every tensor each one takes and
    returns (view operators move none), and the floating-point operations of the matrix
    products: ``2 m k n`` for a dense product, ``2 nnz n`` for a sparse matrix times a dense one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        if func.is_view:
            return out
        tensors = [v for v in tree_flatten((args, kwargs or {}, out))[0] if isinstance(v, Tensor)]
        self.bytes += sum(t.numel() * t.element_size() for t in tensors if _dense(t))
        name = func.overloadpacket.__name__
        if name in ("mm", "addmm", "bmm"):
            left, right = args[-2:] if name == "addmm" else args[:2]
            if _dense(left):
                self.flops += 2 * left.numel() * right.shape[-1]
            else:
                self.flops += 2 * left._nnz() * right.shape[-1]
        return out


def _dense(tensor: Tensor) -> bool:
    return tensor.layout == torch.strided


def machine_peak(threads: int) -> dict[str, float]:
    """The CPU's floating-point rate on one large float32 matrix product, and its memory rate
    on one large copy (read and write), each the median of five."""
    size = 4096
    a, b = torch.randn(size, size), torch.randn(size, size)
    product = median_seconds(lambda: a @ b, 5, torch.device("cpu"))
    source = torch.randn(64 * 2**20)
    target = torch.empty_like(source)
    copy = median_seconds(lambda: target.copy_(source), 5, torch.device("cpu"))
    return {
        "threads": threads,
        "matmul_gflops": 2 * size**3 / product / 1e9,
        "copy_gbytes_per_second": 2 * source.numel() * 4 / copy / 1e9,
    }


def step_figures(name: str, repeats: int) -> dict[str, Any]:
    """One training step of recipe ``name``: its work, its bytes, its time, its operators."""
    recipe = dans.recipe(name, sampler="uniform", device="cpu")
    trainer = trainer_of(recipe)
    batch = trainer.train_triples[: recipe.training.batch_size]

    def step() -> None:
        trainer.step(batch, trainer.sampler, None)

    seconds = median_seconds(step, repeats, torch.device("cpu"))
    counter = OperatorCounter()
    with counter:
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step()
    operators = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in operators)
    return {
        "positives": len(batch),
        "step_seconds": seconds,
        "gflop": counter.flops / 1e9,
        "gbytes": counter.bytes / 1e9,
        "operators": {e.key: e.self_cpu_time_total / total for e in operators[:TOP_OPERATORS]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # As the dans command does (see dans.allocator).
    kept = reuse_freed_memory()
    peak = machine_peak(args.threads)
    result: dict[str, Any] = {"machine": peak, "reuses_freed_memory": kept}
    for name in RECIPES:
        step = step_figures(name, args.repeats)
        step["share_of_peak_flops"] = step["gflop"] / step["step_seconds"] / peak["matmul_gflops"]
        step["share_of_copy_rate"] = (
            step["gbytes"] / step["step_seconds"] / peak["copy_gbytes_per_second"]
        )
        result[name] = step
        print(
            f"{name}: step {step['step_seconds']:.3f} s, {step['gflop']:.1f} GFLOP "
            f"({step['share_of_peak_flops']:.0%} of the matrix product's rate), "
            f"{step['gbytes']:.2f} GB through the operators "
            f"({step['share_of_copy_rate']:.0%} of the copy rate)",
            flush=True,
        )
    result["command"] = " ".join(["benchmarks/step_floor.py", *sys.argv[1:]])
    write_atomic(args.out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
