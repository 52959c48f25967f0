"""Every sampler, and the RGCN encoder's subgraph steps, on a synthetic graph of a million
entities: each in its own process (so that its peak memory is its own), the first --steps steps
of an epoch timed and scaled to the epoch, or the one-line error that refused it.

    python benchmarks/scale_samplers.py --steps 5 --out benchmarks/results/scale/samplers.json

Each row runs ``benchmarks/scale.py`` with lookup + DistMult, batches of 10,000 and
``--sparse-embeddings --l2-scope batch`` where the sampler allows it; the RGCN row trains on
blocks of ``--subgraph-edges`` triples with dense embeddings, as an RGCN must.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from dans.samplers.base import sampler_names

SCALE = Path(__file__).with_name("scale.py")
SPARSE = ["--set", "sparse_embeddings=true", "--set", "l2_scope=batch"]


def variants() -> dict[str, list[str]]:
    """Each row's name and its ``scale.py`` settings."""
    rows = {
        name: ["--set", "encoder=lookup", "--set", f"sampler={name}", *SPARSE]
        for name in sampler_names()
        if name != "all-entities"
    }
    # Its scores in blocks of 1 GB: the default 16 MB is four queries at a time at this size,
    # each block reading the whole table again.
    rows["all-entities"] = ["--set", "encoder=lookup", "--set", "sampler=all-entities"]
    rows["all-entities"] += ["--set", "all_entities_memory_mb=1024"]
    rows["rgcn (subgraph steps)"] = ["--set", "encoder=rgcn", "--set", "subgraph_edges=10000"]
    return rows


def run_one(settings: list[str], args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        command = [sys.executable, str(SCALE), "--entities", str(args.entities)]
        command += ["--triples", str(args.triples), "--steps", str(args.steps)]
        command += [*settings, "--out", str(out)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=args.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return {"outcome": f"did not finish {args.steps} steps in {args.timeout} s"}
        if done.returncode == 0:
            found = json.loads(out.read_text())
            keep = (
                "steps_timed",
                "seconds_per_step",
                "epoch_seconds",
                "peak_rss_gib",
                "build_seconds",
            )
            return {"outcome": "trained", **{key: found[key] for key in keep}}
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        if done.returncode < 0:
            return {"outcome": f"killed by signal {-done.returncode}: {last}"}
        return {"outcome": f"refused or failed (exit {done.returncode}): {last}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--triples", type=int, default=5_000_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed a row")
    parser.add_argument("--only", help="comma-separated row names (default: every row)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    chosen = variants()
    if args.only:
        chosen = {name: chosen[name] for name in args.only.split(",")}
    found = json.loads(args.out.read_text()) if args.out.exists() else {}
    found["settings"] = {"entities": args.entities, "triples": args.triples}
    rows = found.setdefault("rows", {})
    for name, settings in chosen.items():
        rows[name] = run_one(settings, args)
        print(name, json.dumps(rows[name]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
