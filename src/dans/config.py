"""The training configuration: sections of settings and the options of each encoder, decoder and
sampler, one set of keys shared by CLI flags and ``--config`` files (flat, or in tables)."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from dans.errors import ConfigError
from dans.models.decoders import DECODERS
from dans.models.encoders import ENCODERS
from dans.options import OptionError, Options, option, show, value_type
from dans.registry import Registry
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
    """The encoder and decoder, and the dimension they share; each one's own settings are its
    options (:attr:`RGCNEncoder.options_type <dans.models.encoders.RGCNEncoder.options_type>`)."""

    title: ClassVar[str] = "model"

    encoder: str = option("rgcn", "entity encoder")
    decoder: str = option("distmult", "decoder: scores a triple from its embeddings")
    dim: int = option(100, "embedding dimension d", minimum=1)


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
    time_budget: str = option(
        "",
        "train for this long (90s, 10m, 1.5h: training, validation and writing the run's files "
        "together) instead of --epochs: the warm-up, the decay and the validations are laid out "
        "on the time spent as --epochs would lay them out on epochs; the best validated model "
        "is tested ('': train for --epochs)",
        duration=True,
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
# Each kind of component that may own settings, by the config key that picks one.
COMPONENTS: dict[str, Registry[Any]] = {
    "encoder": ENCODERS,
    "decoder": DECODERS,
    "sampler": SAMPLERS,
}


class TrainConfig:
    """Everything that defines a training run: five sections, and the options of every encoder,
    decoder and sampler.

    Built from flat keys, as flags and settings files spell them (``TrainConfig(dim=200,
    dans_mode="snap")``), and read by section (``config.model.dim``), by component
    (``config.sampler_options("dans").mode``, ``config.options_of("encoder", "rgcn").layers``)
    or by key (``config["layers"]``). Each value is checked against its declared range when the
    config is made; :meth:`validate` adds the checks that span settings. Defaults follow the
    paper (d = 100, batch 1000, 20 negatives, a 2-layer RGCN with 4 bases and dropout 0.2) except
    where the docs say a measurement here chose otherwise.

    A component's options come from its class (``options_type``), so one that a user registers
    gets its keys here, in settings files and on the command line. A sampler variant's name
    (``sampler="dans-authors"``) becomes its sampler's, with the options the variant fixes over
    any given (:attr:`NegativeSampler.variants`).
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
        owners = self._owners()
        unknown = [key for key in values if key not in owners]
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
        self._components = {name: built[name] for name in groups if name not in SECTIONS}

    @staticmethod
    def groups() -> dict[str, type[Options]]:
        """Every group of settings by the name of its table in a settings file: the sections,
        then each registered encoder's, decoder's and sampler's options (``encoders.rgcn``,
        ``samplers.dans``); a component that keeps another's options class (a subclass) shares
        that one's group rather than repeating its keys."""
        groups = dict(SECTIONS)
        for kind, registry in COMPONENTS.items():
            for name in registry.names():
                options = registry.get(name).options_type
                if options is not None and options not in groups.values():
                    groups[f"{kind}s.{name}"] = options
        return groups

    @classmethod
    def heading(cls, name: str) -> str:
        """How group ``name`` is headed in help: a section's title, or the component's kind and
        name (``sampler dans``)."""
        kind, _, component = name.partition(".")
        return f"{kind.removesuffix('s')} {component}" if component else cls.groups()[name].title

    @classmethod
    def _owners(cls) -> dict[str, str]:
        """Config key -> the group that declares it; two groups may not declare one key."""
        owners: dict[str, str] = {}
        for name, group in cls.groups().items():
            for key in group.specs():
                if key in owners:
                    raise ValueError(f"config key {key!r} is declared by {owners[key]} and {name}")
                owners[key] = name
        return owners

    @classmethod
    def specs(cls) -> dict[str, dataclasses.Field]:
        """Every config key and the field that declares it, in the order of :meth:`to_dict`."""
        return {key: spec for group in cls.groups().values() for key, spec in group.specs().items()}

    def chosen(self, kind: str) -> str:
        """The name of the ``kind`` (encoder, decoder or sampler) this configuration trains with:
        the value of the key that picks it (see :data:`COMPONENTS`)."""
        return self[kind]

    def options_of(self, kind: str, name: str) -> Options | None:
        """The options of the ``kind`` (encoder, decoder or sampler) called ``name``, or None for
        one without any."""
        options_type = COMPONENTS[kind].get(name).options_type
        if options_type is None:
            return None
        found = [options for options in self._components.values() if type(options) is options_type]
        # None found: the component was registered after this config was made, so its defaults.
        return found[0] if found else options_type()

    def sampler_options(self, name: str) -> Options | None:
        """Sampler ``name``'s options, or None for a sampler without any."""
        return self.options_of("sampler", name)

    def unused(self, key: str, varied: Collection[str] = ()) -> str | None:
        """Why config key ``key`` cannot change this configuration's run (it is an option of
        another component than the one chosen), or None when it can; the options of every
        component of a kind in ``varied`` (whose choice varies, as in a search) can."""
        owner = self._owners()[key]
        if owner in SECTIONS:
            return None
        kind = owner.split(".", 1)[0].removesuffix("s")
        if kind in varied:
            return None
        options_type = COMPONENTS[kind].get(self.chosen(kind)).options_type
        if options_type is not None and key in options_type.specs():
            return None
        component = owner.split(".", 1)[1]
        return (
            f"{key} is a setting of the {component} {kind}, but the runs use --{kind} "
            f"{self.chosen(kind)}"
        )

    def __getitem__(self, key: str) -> Any:
        """The value of a flat key, as a flag or a settings file spells it."""
        return self.to_dict()[key]

    def replace(self, **values: Any) -> TrainConfig:
        """A copy with the given keys changed."""
        return TrainConfig(**{**self.to_dict(), **current_names(values, "replace")})

    def validate(self) -> TrainConfig:
        """The checks that span settings; raises :class:`ConfigError` naming the flags."""
        if self.training.time_budget and self.training.pretrain_epochs:
            raise ConfigError(
                "--time-budget lays out one phase of training: it cannot follow --pretrain-epochs"
            )
        if self.training.subgraph_edges and self.model.encoder != "rgcn":
            raise ConfigError("--subgraph-edges needs --encoder rgcn: only it passes messages")
        if self["sparse_embeddings"]:
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
        """Every key, one table per group (``[model]``, ``[encoders.rgcn]``, ``[samplers.dans]``),
        as :meth:`from_toml` reads it."""
        lines = [
            "# dans training configuration: every key is also a `dans train` flag, and a settings",
            "# file may give its keys in these tables or flat, without any",
        ]
        for name, group in zip(self.groups(), self._groups(), strict=True):
            kind, _, component = name.partition(".")
            table = f"{kind}.{_toml_key(component)}" if component else name
            lines += ["", f"[{table}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in group.values().items()]
        return "\n".join(lines) + "\n"

    def _groups(self) -> list[Options]:
        return [getattr(self, name) for name in SECTIONS] + list(self._components.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        specs = self.specs()
        changed = {
            key: value for key, value in self.to_dict().items() if value != specs[key].default
        }
        return f"TrainConfig({', '.join(f'{key}={value!r}' for key, value in changed.items())})"

    @classmethod
    def from_dict(
        cls,
        values: dict[str, Any],
        source: str,
        warn: bool = True,
        where: Callable[[str], str] | None = None,
    ) -> TrainConfig:
        """Build from a flat mapping, refusing unknown keys and values of the wrong type, named
        after ``where(key)`` (by default ``source``); a value out of range raises
        :class:`~dans.options.OptionError` naming its flag. Renamed keys are read under their new
        names, with a warning naming ``source`` if ``warn``."""
        where = where or (lambda key: source)
        types = {key: value_type(spec) for key, spec in cls.specs().items()}
        values = current_names(values, source, warn)
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{where(key)}: unknown key {key!r}")
            expected = types[key]
            ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                try:
                    values[key] = float(value)
                except OverflowError:
                    raise ConfigError(
                        f"{where(key)}: {key} is too large, got {show(value)}"
                    ) from None
                ok = True
            if not ok:
                raise ConfigError(
                    f"{where(key)}: {key} must be {expected.__name__}, got "
                    f"{type(value).__name__} {show(value)}"
                )
        return cls(**values)

    @classmethod
    def from_toml(
        cls, path: Path, defaults: dict[str, Any] | None = None, warn: bool = True
    ) -> TrainConfig:
        """The file's settings over ``defaults`` over the built-in defaults; the file gives its
        keys flat, in the tables :meth:`to_toml` writes, or both. ``warn``: whether keys the file
        names by an old name are warned about (not for a file dans wrote). Every error names the
        file, and the line where one is to blame."""
        text, document = read_toml(path)
        values, tables = _flatten(document, lambda key, table: where_set(path, text, key, table))
        old_names = {new: old for old, new in renamed_keys().items()}

        def where(key: str) -> str:
            # The key as the file spells it: a renamed key's message names its new name.
            spelled = key if key in values else old_names.get(key, key)
            return where_set(path, text, spelled, tables.get(spelled))

        try:
            return cls.from_dict({**(defaults or {}), **values}, str(path), warn, where)
        except OptionError as exc:
            if exc.key not in values and old_names.get(exc.key) not in values:
                raise
            raise ConfigError(f"{where(exc.key)}: {exc}") from None


def _flatten(
    document: dict[str, Any], where: Callable[[str | None, str], str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The flat keys of a settings file's ``document``, and the table each key came from (flat
    keys have none). Tables are a section's (``[model]``) or a component's (``[samplers.dans]``)
    and hold that group's keys only; ``where(key, table)`` locates a key (None: the table's
    header) for the errors."""
    values: dict[str, Any] = {}
    tables: dict[str, str] = {}
    renamed = renamed_keys()
    keys = TrainConfig.specs()
    for name, value in document.items():
        if not isinstance(value, dict) or name in keys:
            # A setting, flat; one given a table is refused with the setting's type.
            values[name] = value
            continue
        kind = name.removesuffix("s")
        if name in SECTIONS:
            groups = {name: (SECTIONS[name], value)}
        elif kind in COMPONENTS and name == kind + "s":
            groups = {}
            for component, table in value.items():
                if not isinstance(table, dict):
                    raise ConfigError(f"{where(component, name)}: {component} must be a table")
                try:
                    options = COMPONENTS[kind].get(component).options_type
                except ConfigError as exc:
                    raise ConfigError(f"{where(None, f'{name}.{component}')}: {exc}") from None
                groups[f"{name}.{component}"] = (options, table)
        else:
            raise ConfigError(
                f"{where(None, name)}: {name!r} is neither a setting nor a table of settings; "
                f"tables are the sections ({', '.join(SECTIONS)}), encoders.NAME, decoders.NAME "
                "and samplers.NAME"
            )
        for table_name, (options, table) in groups.items():
            declared = options.specs() if options is not None else {}
            for key, setting in table.items():
                if renamed.get(key, key) not in declared:
                    raise ConfigError(
                        f"{where(key, table_name)}: [{table_name}] has no key {key!r}"
                    )
                if key in values:
                    raise ConfigError(f"{where(key, table_name)}: {key} is given twice")
                values[key] = setting
                tables[key] = table_name
    return values, tables


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


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare where TOML allows it, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


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
