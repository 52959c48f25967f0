"""`dans export RUN`: a run's embeddings, id maps and weights, for other tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from dans.cli.arguments import Command, add_device_flag
from dans.export import EXPORT_FORMATS, export_run
from dans.pipeline import load_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run directory written by `dans train`")
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="npy",
        help="embeddings as NumPy arrays, tab-separated text or safetensors; the weights as "
        "model.pt (torch.load(weights_only=True) reads it) or model.safetensors (default: npy)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    add_device_flag(parser)


def run(args: argparse.Namespace) -> None:
    written = export_run(load_run(args.run, device=args.device), args.out, args.format)
    print("\n".join(str(path) for path in written))


COMMAND = Command(
    "export",
    "write a run's entity and relation embeddings, id maps and model weights",
    add_arguments,
    run,
)
