"""The training configuration: one flat set of keys shared by CLI flags and ``--config`` files."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dans.errors import ConfigError
from dans.options import check_range, option, show
from dans.samplers.dans.sampler import DANS_MODES, DANS_OUTPUT_RANGES, DANS_PATHWAYS
from dans.samplers.nscaching import NSCACHING_REFRESH
from dans.samplers.sans import SANS_MAX_PAIRS, SANS_MODES

TIE_POLICIES = ("realistic", "optimistic", "pessimistic")
LR_DECAYS = ("none", "cosine", "linear")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Every key is also a ``dans train`` flag.

    Defaults follow the paper (d = 100, batch 1000, 20 negatives, Adam with lr 1e-3, a 2-layer RGCN
    with 4 bases and dropout 0.2) except where README.md says a measurement here chose otherwise.
    """

    dataset: str = option("umls", "named dataset: umls (bundled), wn18rr, fb15k-237, nell-995")
    data_dir: str = option("", "folder with train.txt, valid.txt, test.txt (overrides --dataset)")
    encoder: str = option("rgcn", "entity encoder: rgcn or lookup")
    decoder: str = option("distmult", "decoder: distmult, complex, rotate or transe")
    sampler: str = option("uniform", "negative sampler: uniform, popularity, self-adv or dans")
    dim: int = option(100, "embedding dimension d", minimum=1)
    layers: int = option(2, "RGCN layers", minimum=1)
    bases: int = option(4, "RGCN basis matrices", minimum=1)
    blocks: int = option(
        0,
        "RGCN: make each relation's matrix block-diagonal with this many blocks, instead of a "
        "combination of --bases matrices; it must divide --dim (0: bases)",
        minimum=0,
    )
    dropout: float = option(0.2, "dropout between RGCN layers", minimum=0.0, below=1.0)
    edge_dropout: float = option(
        0.4,
        "RGCN: share of training triples left out of each step's message passing",
        minimum=0.0,
        below=1.0,
    )
    margin: float = option(6.0, "logit offset of the distance decoders (rotate, transe)")
    negatives: int = option(20, "negatives per positive (N_s)", minimum=1)
    filter_negatives: bool = option(False, "drop negatives that are known-true triples")
    adversarial_temperature: float = option(1.0, "self-adv: softmax temperature alpha", above=0.0)
    epochs: int = option(
        300, "training epochs after pretraining (0: evaluate untrained)", minimum=0
    )
    pretrain_epochs: int = option(0, "epochs with uniform negatives before the sampler", minimum=0)
    batch_size: int = option(1000, "positive triples per mini-batch", minimum=1)
    subgraph_edges: int = option(
        0,
        "RGCN: train on blocks of this many training triples, each one step whose messages "
        "pass over a random --subgraph-split of the block, as the RGCN reference's edge "
        "sampling (0: full graph, mini-batches of --batch-size, --edge-dropout)",
        minimum=0,
    )
    subgraph_split: float = option(
        0.5, "RGCN: share of each sampled block that carries messages", above=0.0, maximum=1.0
    )
    lr: float = option(3e-3, "Adam learning rate", above=0.0)
    lr_warmup_epochs: int = option(
        0, "epochs over which the learning rate ramps up linearly to --lr", minimum=0
    )
    lr_decay: str = option(
        "none",
        "after the warm-up, keep --lr (none) or decay it towards 0 at the last epoch along a "
        "half cosine (cosine) or a line (linear)",
        choices=LR_DECAYS,
    )
    l2: float = option(1e-2, "L2 penalty on the entity and relation embeddings", minimum=0.0)
    grad_clip: float = option(1.0, "gradient-norm clipping (0: off)", minimum=0.0)
    eval_every: int = option(10, "validate every N epochs", minimum=1)
    patience: int = option(5, "stop after N validations without a better MRR (0: never)", minimum=0)
    seed: int = option(1, "random seed")
    device: str = option("auto", "auto (a GPU when there is one), cpu, cuda or cuda:N")
    ties: str = option("realistic", "tie policy for ranks", choices=TIE_POLICIES)
    eval_memory_mb: float = option(
        16.0, "MB of scores (queries x entities) held at once while ranking", above=0.0
    )
    mcns_alpha: float = option(
        0.25,
        "MCNS: negatives drawn in proportion to exp(alpha * score); 0 is uniform, 1 the "
        "model's own distribution",
        minimum=0.0,
    )
    mcns_uniform_share: float = option(
        0.5,
        "MCNS: chance that a chain step proposes a uniform entity rather than a neighbour",
        above=0.0,
        maximum=1.0,
    )
    mcns_burn_in: int = option(
        10, "MCNS: Metropolis-Hastings steps before a chain's states are used", minimum=0
    )
    kbgan_candidates: int = option(
        20, "KBGAN: uniform candidates the generator picks each negative from", minimum=1
    )
    kbgan_generator_dim: int = option(
        50, "KBGAN: embedding size of the generator's own DistMult model", minimum=1
    )
    kbgan_generator_lr: float = option(1e-3, "KBGAN: generator Adam learning rate", above=0.0)
    kbgan_temperature: float = option(
        1.0, "KBGAN: softmax temperature on the generator's logits", above=0.0
    )
    kbgan_baseline_momentum: float = option(
        0.9,
        "KBGAN: momentum of the REINFORCE reward baseline's moving average",
        minimum=0.0,
        below=1.0,
    )
    nscaching_cache_size: int = option(
        50, "NSCaching: entities cached per (h, r) and per (r, t) of train (N1)", minimum=1
    )
    nscaching_candidates: int = option(
        50, "NSCaching: random entities offered to each cache at a refresh (N2)", minimum=1
    )
    nscaching_refresh: str = option(
        "importance",
        "NSCaching: keep N1 of cache + candidates by importance sampling on softmax(score / T) "
        "(importance) or the N1 highest-scored (top)",
        choices=NSCACHING_REFRESH,
    )
    nscaching_temperature: float = option(
        1.0, "NSCaching: softmax temperature T of the importance refresh", above=0.0
    )
    sans_mode: str = option(
        "khop",
        "SANS: draw from each entity's k-hop neighbourhood (khop) or random-walk endpoints (rw)",
        choices=SANS_MODES,
    )
    sans_hops: int = option(2, "SANS: neighbourhood radius k, or walk length", minimum=1)
    sans_max_pairs: int = option(
        SANS_MAX_PAIRS, "SANS: largest k-hop index (entity, neighbour pairs) built", minimum=1
    )
    dans_pathways: str = option(
        "both", "DANS: generator pathways G_E, G_R or both", choices=DANS_PATHWAYS
    )
    dans_film: bool = option(True, "DANS: FiLM adaptation of the generator")
    dans_mode: str = option(
        "continuous",
        "DANS: use generated vectors (continuous) or their nearest real entities (snap)",
        choices=DANS_MODES,
    )
    dans_generated_share: float = option(
        0.5,
        "DANS: share of the negatives made by the generator (rounded up, split evenly between "
        "the pathways); the rest are uniform",
        above=0.0,
        maximum=1.0,
    )
    dans_generator_layers: int = option(2, "DANS: hidden layers M of each pathway", minimum=1)
    dans_noise_sigma: float = option(0.01, "DANS: std of the generator's input noise", minimum=0.0)
    dans_film_lambda: float = option(1e-4, "DANS: FiLM regulariser weight lambda", minimum=0.0)
    dans_generator_lr: float = option(1e-3, "DANS: generator learning rate", above=0.0)
    dans_discriminator_lr: float = option(1e-4, "DANS: discriminator learning rate", above=0.0)
    dans_generator_steps: int = option(5, "DANS: generator steps per mini-batch", minimum=0)
    dans_discriminator_steps: int = option(1, "DANS: discriminator steps per mini-batch", minimum=0)
    dans_gan_positives: int = option(
        0,
        "DANS: positives of each mini-batch, drawn at random, that the generator and "
        "discriminator steps train on (0: all of them, the paper's schedule)",
        minimum=0,
    )
    dans_fake_per_side: bool = option(
        False,
        "DANS: one fake per distinct conditioning vector and pathway (G_E: the kept entity; "
        "G_R: it, the relation and the side), shared by the generated negatives conditioned on "
        "it (off: a fake per negative, the paper's sampling)",
    )
    dans_output_range: str = option(
        "unit",
        "DANS: generator output tanh in [-1, 1] (unit, the authors' code) or scaled to the "
        "largest entity coordinate (entities)",
        choices=DANS_OUTPUT_RANGES,
    )

    def validate(self) -> TrainConfig:
        """Check ranges and combinations; raises :class:`ConfigError` naming the flag."""
        for spec in dataclasses.fields(self):
            check_range(spec, getattr(self, spec.name))
        if self.subgraph_edges and self.encoder != "rgcn":
            raise ConfigError("--subgraph-edges needs --encoder rgcn: only it passes messages")
        resolve_device(self.device)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines = ["# dans training configuration (every key is also a `dans train` flag)"]
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> TrainConfig:
        """Build from a mapping, refusing unknown keys and values of the wrong type."""
        types = {spec.name: spec.type for spec in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{source}: unknown key {key!r}")
            expected = {"int": int, "float": float, "str": str, "bool": bool}[str(types[key])]
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                try:
                    values[key] = float(value)
                except OverflowError:
                    raise ConfigError(f"{source}: {key} is too large, got {show(value)}") from None
                ok = True
            if not ok:
                raise ConfigError(
                    f"{source}: {key} must be {expected.__name__}, got {type(value).__name__} "
                    f"{show(value)}"
                )
        return cls(**values)

    @classmethod
    def from_toml(cls, path: Path, defaults: dict[str, Any] | None = None) -> TrainConfig:
        """The file's settings over ``defaults`` over the built-in defaults."""
        try:
            text = path.read_text(encoding="utf-8")
            values = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except UnicodeDecodeError as exc:
            # read_text decodes the whole file at once: exc.object is every byte of it.
            line = exc.object.count(b"\n", 0, exc.start) + 1
            raise ConfigError(
                f"{path}:{line}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except ValueError as exc:
            # tomllib lets Python's own limits through: an integer of more than 4300 digits.
            raise ConfigError(f"{path}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: arrays or tables nested too deeply") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        config = cls.from_dict({**(defaults or {}), **values}, str(path))
        specs = {spec.name: spec for spec in dataclasses.fields(cls)}
        for key in values:
            try:
                check_range(specs[key], getattr(config, key))
            except ConfigError as exc:
                line = _line_of(text, key)
                where = f"{path}:{line}" if line else str(path)
                raise ConfigError(f"{where}: {exc}") from None
        return config


def _line_of(text: str, key: str) -> int | None:
    """The line of a TOML document that sets the top-level ``key``, bare or quoted; None when it
    is written with escapes."""
    pattern = re.compile(rf"""\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.split("\n"), 1):
        if pattern.match(line):
            return number
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the first CUDA device when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        # torch names many more (meta, mps, xla...); none can train here, and meta fails only
        # after the run directory is written.
        raise ConfigError(f"--device: unsupported device {name!r}; use auto, cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device auto")
    return device
