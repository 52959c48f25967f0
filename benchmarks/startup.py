"""Start-up cost of the command line: the CPU time (user + system) of `dans --help` and
`dans datasets` against a bare `import torch`, each in a fresh process, the median of
``--repeats`` alternating runs. Run it on an idle machine.

    python benchmarks/startup.py --out benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "dans --help": [sys.executable, "-m", "dans", "--help"],
    "dans datasets": [sys.executable, "-m", "dans", "datasets"],
}


def cpu_seconds(command: list[str]) -> float:
    """User + system CPU seconds of one run of ``command`` and its children."""
    before = os.times()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(cpu_seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["import torch"]
    result = {
        "repeats": args.repeats,
        "cpu_seconds": medians,
        "ratio_to_import_torch": {name: value / base for name, value in medians.items()},
        "runs": times,
    }
    for name, value in medians.items():
        print(f"{name:14} {value:.2f} s CPU  ({value / base:.2f}x import torch)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
