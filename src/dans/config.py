"""The training configuration: sections of settings and each sampler's options, read and written
as one flat set of keys shared by CLI flags and ``--config`` files."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from dans.errors import ConfigError
from dans.options import OptionError, Options, option, show, value_type
from dans.samplers import SAMPLERS
from dans.samplers.base import sampler_variants

TIE_POLICIES = ("realistic", "optimistic", "pessimistic")
LR_DECAYS = ("none", "cosine", "linear")
L2_SCOPES = ("table", "batch")


@dataclass(frozen=True)
class DataSettings(Options):
    """Which knowledge graph to train on."""

    title: ClassVar[str] = "data"

    dataset: str = option(
        "umls",
        "named dataset: umls (bundled), wn18rr, fb15k-237, nell-995, yago3-10, codex-s, "
        "codex-m, codex-l (`dans datasets` lists them), or pykeen:NAME for one of PyKEEN's "
        "(pykeen:Nations)",
    )
    data_dir: str = option("", "folder with train.txt, valid.txt, test.txt (overrides --dataset)")


@dataclass(frozen=True)
class ModelSettings(Options):
    """The encoder and decoder: their kinds and shapes."""

    title: ClassVar[str] = "model"

    encoder: str = option("rgcn", "entity encoder")
    decoder: str = option("distmult", "decoder: scores a triple from its embeddings")
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
    sparse_embeddings: bool = option(
        False,
        "lookup encoder: row-sparse gradients for the entity table and a lazy Adam that updates "
        "the rows a step touches (and their moments) alone, so that a step costs what its batch "
        "touches, not the size of the graph; needs --l2-scope batch",
    )


@dataclass(frozen=True)
class TrainingSettings(Options):
    """How the model trains: the sampler and its negatives, the schedule, the optimiser."""

    title: ClassVar[str] = "training"

    sampler: str = option(
        "uniform",
        "negative sampler; a variant's name (dans-authors) stands for its sampler with the "
        "variant's options, over any others given",
    )
    negatives: int = option(20, "negatives per positive (N_s)", minimum=1)
    filter_negatives: bool = option(False, "drop negatives that are known-true triples")
    epochs: int = option(
        300, "training epochs after pretraining (0: evaluate untrained)", minimum=0
    )
    pretrain_epochs: int = option(0, "epochs with uniform negatives before the sampler", minimum=0)
    pretrain_restore_best: bool = option(
        False,
        "start the sampler from pretraining's best validation checkpoint rather than its last "
        "epoch (the paper's protocol); pretraining then also validates at its last epoch",
    )
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
    l2_scope: str = option(
        "table",
        "entity rows the L2 penalty covers at each step: the whole table, or the heads and "
        "tails of the step's positives (batch)",
        choices=L2_SCOPES,
    )
    grad_clip: float = option(1.0, "gradient-norm clipping (0: off)", minimum=0.0)


@dataclass(frozen=True)
class EvaluationSettings(Options):
    """How and how often the model is ranked on validation."""

    title: ClassVar[str] = "evaluation"

    eval_every: int = option(10, "validate every N epochs", minimum=1)
    patience: int = option(5, "stop after N validations without a better MRR (0: never)", minimum=0)
    ties: str = option("realistic", "tie policy for ranks", choices=TIE_POLICIES)
    eval_memory_mb: float = option(
        16.0, "MB of scores (queries x entities) held at once while ranking", above=0.0
    )
    eval_candidates: int = option(
        0,
        "rank each valid and test query against this many entities drawn at random, a "
        "sampled protocol whose figures are higher than the full ranking's and named so "
        "wherever they appear (0: against every entity)",
        minimum=0,
    )


@dataclass(frozen=True)
class RuntimeSettings(Options):
    """Where a run happens, and with which seed."""

    title: ClassVar[str] = "runtime"

    seed: int = option(1, "random seed")
    device: str = option("auto", "auto (a GPU when there is one), cpu, cuda or cuda:N")


SECTIONS: dict[str, type[Options]] = {
    "data": DataSettings,
    "model": ModelSettings,
    "training": TrainingSettings,
    "evaluation": EvaluationSettings,
    "runtime": RuntimeSettings,
}


class TrainConfig:
    """Everything that defines a training run: five sections, and the options of every sampler.

    Built from flat keys, as flags and settings files spell them (``TrainConfig(dim=200,
    dans_mode="snap")``), and read by section (``config.model.dim``,
    ``config.sampler_options("dans").mode``). Each value is checked against its declared range
    when the config is made; :meth:`validate` adds the checks that span settings. Defaults follow
    the paper (d = 100, batch 1000, 20 negatives, a 2-layer RGCN with 4 bases and dropout 0.2)
    except where README.md says a measurement here chose otherwise.

    A sampler's options come from its class (:attr:`NegativeSampler.options_type`), so one that
    a user registers gets its keys here, in settings files and on the command line. A sampler
    variant's name (``sampler="dans-authors"``) becomes its sampler's, with the options the
    variant fixes over any given (:attr:`NegativeSampler.variants`).
    """

    data: DataSettings
    model: ModelSettings
    training: TrainingSettings
    evaluation: EvaluationSettings
    runtime: RuntimeSettings

    def __init__(self, **values: Any) -> None:
        values = current_names(values, "TrainConfig")
        # A variant's name becomes its sampler's, and the options the variant fixes win.
        sampler = values.get("sampler")
        if isinstance(sampler, str):
            values = {**values, **sampler_variants().get(sampler, {})}
        groups = self.groups()
        owner = {key: name for name, group in groups.items() for key in group.specs()}
        unknown = [key for key in values if key not in owner]
        if unknown:
            raise TypeError(f"unknown setting {unknown[0]!r}")
        built = {
            name: group(
                **{spec.name: values[key] for key, spec in group.specs().items() if key in values}
            )
            for name, group in groups.items()
        }
        for name in SECTIONS:
            setattr(self, name, built[name])
        self._samplers = {name: built[name] for name in groups if name not in SECTIONS}

    @staticmethod
    def groups() -> dict[str, type[Options]]:
        """Every group of settings by name: the sections, then each registered sampler's options
        under the sampler's name; a sampler that keeps another's options class (a subclass)
        shares that sampler's group rather than repeating its keys."""
        samplers: dict[str, type[Options]] = {}
        for name in SAMPLERS.names():
            options = SAMPLERS.get(name).options_type
            if options is not None and options not in samplers.values():
                samplers[name] = options
        return {**SECTIONS, **samplers}

    @classmethod
    def specs(cls) -> dict[str, dataclasses.Field]:
        """Every config key and the field that declares it, in the order of :meth:`to_dict`."""
        return {key: spec for group in cls.groups().values() for key, spec in group.specs().items()}

    def sampler_options(self, name: str) -> Options | None:
        """Sampler ``name``'s options, or None for a sampler without any."""
        options_type = SAMPLERS.get(name).options_type
        if options_type is None:
            return None
        found = [options for options in self._samplers.values() if type(options) is options_type]
        # None found: the sampler was registered after this config was made, so its defaults.
        return found[0] if found else options_type()

    @classmethod
    def owner(cls, key: str) -> str:
        """The group that declares config key ``key``: a section's name or a sampler's."""
        return next(name for name, group in cls.groups().items() if key in group.specs())

    def uses(self, key: str) -> bool:
        """Whether config key ``key`` can change this configuration's run: a section's setting,
        or an option of its own sampler (not another sampler's)."""
        if self.owner(key) in SECTIONS:
            return True
        options_type = SAMPLERS.get(self.training.sampler).options_type
        return options_type is not None and key in options_type.specs()

    def __getitem__(self, key: str) -> Any:
        """The value of a flat key, as a flag or a settings file spells it."""
        return self.to_dict()[key]

    def replace(self, **values: Any) -> TrainConfig:
        """A copy with the given keys changed."""
        return TrainConfig(**{**self.to_dict(), **current_names(values, "replace")})

    def validate(self) -> TrainConfig:
        """The checks that span settings; raises :class:`ConfigError` naming the flags."""
        if self.training.subgraph_edges and self.model.encoder != "rgcn":
            raise ConfigError("--subgraph-edges needs --encoder rgcn: only it passes messages")
        if self.model.sparse_embeddings:
            self._check_sparse()
        resolve_device(self.runtime.device)
        return self

    def _check_sparse(self) -> None:
        """Row-sparse updates hold only where nothing in a step reaches every entity row."""
        if self.model.encoder != "lookup":
            raise ConfigError(
                "--sparse-embeddings needs --encoder lookup: an encoder that passes messages "
                "reaches every entity row at each step"
            )
        if self.training.l2 and self.training.l2_scope != "batch":
            raise ConfigError(
                "--sparse-embeddings needs --l2-scope batch (or --l2 0): an L2 penalty on the "
                "whole table reaches every entity row at each step"
            )
        if SAMPLERS.get(self.training.sampler).touches_every_entity:
            raise ConfigError(
                f"--sparse-embeddings cannot serve --sampler {self.training.sampler}: it scores "
                "every entity at each step"
            )

    def ranking(self) -> dict[str, Any]:
        """How this configuration's runs rank their valid and test queries, as
        :func:`dans.evaluate` takes it."""
        return {
            "ties": self.evaluation.ties,
            "memory_mb": self.evaluation.eval_memory_mb,
            "candidates": self.evaluation.eval_candidates,
            "seed": self.runtime.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value, flat, sections first."""
        return {key: value for group in self._groups() for key, value in group.values().items()}

    def to_toml(self) -> str:
        lines = ["# dans training configuration (every key is also a `dans train` flag)"]
        for name, group in zip(self.groups(), self._groups(), strict=True):
            lines.append(f"# {group.title or 'sampler ' + name}")
            lines += [f"{key} = {_toml_value(value)}" for key, value in group.values().items()]
        return "\n".join(lines) + "\n"

    def _groups(self) -> list[Options]:
        return [getattr(self, name) for name in SECTIONS] + [
            self.sampler_options(name) for name in self.groups() if name not in SECTIONS
        ]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        specs = self.specs()
        changed = {
            key: value for key, value in self.to_dict().items() if value != specs[key].default
        }
        return f"TrainConfig({', '.join(f'{key}={value!r}' for key, value in changed.items())})"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str, warn: bool = True) -> TrainConfig:
        """Build from a mapping, refusing unknown keys and values of the wrong type, named after
        ``source``; a value out of range raises :class:`~dans.options.OptionError` naming its
        flag. Renamed keys are read under their new names, with a warning if ``warn``."""
        types = {key: value_type(spec) for key, spec in cls.specs().items()}
        values = current_names(values, source, warn)
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{source}: unknown key {key!r}")
            expected = types[key]
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
    def from_toml(
        cls, path: Path, defaults: dict[str, Any] | None = None, warn: bool = True
    ) -> TrainConfig:
        """The file's settings over ``defaults`` over the built-in defaults; ``warn``: whether
        keys the file names by an old name are warned about (not for a file dans wrote)."""
        text, values = read_toml(path)
        try:
            return cls.from_dict({**(defaults or {}), **values}, str(path), warn)
        except OptionError as exc:
            old = {new: old for old, new in renamed_keys().items()}.get(exc.key, exc.key)
            key = exc.key if exc.key in values else old
            if key not in values:
                raise
            raise ConfigError(f"{where_set(path, text, key)}: {exc}") from None


def renamed_keys() -> dict[str, str]:
    """Every old config key still read, and the key that replaced it."""
    return {
        old: new for group in TrainConfig.groups().values() for old, new in group.renamed.items()
    }


def current_names(values: dict[str, Any], source: str, warn: bool = True) -> dict[str, Any]:
    """``values`` with each renamed key under its new name, warning (``FutureWarning``, which
    a user sees) that ``source`` uses the old one; both names at once is an error."""
    renamed = renamed_keys()
    found = {}
    for key, value in values.items():
        new = renamed.get(key)
        if new is None:
            found[key] = value
            continue
        if new in values:
            raise ConfigError(f"{source}: {key} and {new} are the same setting; keep {new}")
        if warn:
            warnings.warn(
                f"{source}: {key} is now called {new}; the old name is read for one release",
                FutureWarning,
                stacklevel=3,
            )
        found[new] = value
    return found


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text of a TOML file and what it holds; every way of failing is a one-line
    :class:`ConfigError` naming the file (and the line, where one is to blame)."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
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


# A TOML key, bare or quoted, with the spaces around it.
_QUOTED = r"""\s*(?:{0}|"{0}"|'{0}')\s*"""


def where_set(path: Path, text: str, key: str | None, table: str | None = None) -> str:
    """``path:line`` of the line of TOML document ``text`` that sets ``key`` (bare or quoted),
    at the top level or in ``[table]``, or of the header ``[table]`` itself when ``key`` is
    None; ``path`` alone when no line is found (a key written with escapes, or dotted)."""
    header = re.compile(r"\s*\[" + _QUOTED.format(re.escape(table)) + r"\]") if table else None
    setting = re.compile(_QUOTED.format(re.escape(key)) + "=") if key is not None else None
    inside = table is None  # whether the lines read so far are in the table searched
    for number, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("["):
            inside = header is not None and header.match(line) is not None
            if inside and setting is None:
                return f"{path}:{number}"
        elif inside and setting is not None and setting.match(line):
            return f"{path}:{number}"
    return str(path)


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
