"""The configuration: sections, each sampler's options, settings files old and new, and a sampler
registered from outside the package."""

import tomllib
import warnings
from dataclasses import dataclass
from typing import ClassVar

import pytest

from dans.builders import build_sampler
from dans.cli import main
from dans.config import COMPONENTS, SECTIONS, TrainConfig
from dans.errors import ConfigError
from dans.options import Options, option
from dans.samplers import SAMPLERS, UniformSampler
from dans.samplers.base import sampler_names, sampler_variants
from dans.samplers.dans import DANSOptions

COMPONENT_TABLES = [kind + "s" for kind in COMPONENTS]

# A config.toml as the flat layout wrote it: no headings, the self-adversarial weights' alpha
# amid the training keys under its old name, DANS's keys last.
FLAT_LAYOUT = """# dans training configuration (every key is also a `dans train` flag)
dataset = "umls"
encoder = "lookup"
sampler = "dans"
dim = 16
negatives = 6
filter_negatives = false
adversarial_temperature = 2.0
epochs = 2
seed = 3
device = "cpu"
ties = "realistic"
mcns_alpha = 0.5
dans_mode = "snap"
dans_gan_positives = 300
"""


def test_a_config_reads_by_section_by_sampler_and_by_key():
    config = TrainConfig(dim=8, lr=0.01, seed=3, ties="optimistic", dans_mode="snap")
    assert (config.model.dim, config.training.lr, config.runtime.seed) == (8, 0.01, 3)
    assert config.evaluation.ties == "optimistic" and config.data.dataset == "umls"
    assert config.sampler_options("dans") == DANSOptions(mode="snap")
    assert config.sampler_options("popularity") is None
    assert config["dans_mode"] == "snap" and config["dim"] == 8
    assert config.replace(dim=4).model.dim == 4 and config.model.dim == 8
    with pytest.raises(TypeError, match="dans_modes"):
        TrainConfig(dans_modes="snap")


def test_a_flat_config_file_loads_and_a_written_one_reads_back(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text(FLAT_LAYOUT)
    with pytest.warns(FutureWarning, match="adversarial_temperature is now called self_adv_alpha"):
        config = TrainConfig.from_toml(old)
    assert config == TrainConfig(
        encoder="lookup",
        sampler="dans",
        dim=16,
        negatives=6,
        self_adv_alpha=2.0,
        epochs=2,
        seed=3,
        device="cpu",
        mcns_alpha=0.5,
        dans_mode="snap",
        dans_gan_positives=300,
    )
    written = tmp_path / "config.toml"
    written.write_text(config.to_toml())
    assert TrainConfig.from_toml(written) == config
    # Every group is one table holding its keys, and nothing else.
    document = tomllib.loads(config.to_toml())
    tables = {
        **{name: document[name] for name in SECTIONS},
        **{
            f"{kind}.{name}": table
            for kind in COMPONENT_TABLES
            for name, table in document[kind].items()
        },
    }
    groups = TrainConfig.groups()
    assert tables.keys() == groups.keys()
    assert {"encoders.rgcn", "encoders.lookup", "decoders.rotate", "samplers.dans"} <= set(groups)
    for name, table in tables.items():
        assert table == {key: config[key] for key in groups[name].specs()}
    assert tables["model"] == {"encoder": "lookup", "decoder": "distmult", "dim": 16}
    assert (
        tables["encoders.rgcn"]["layers"] == 2
        and tables["samplers.self-adv"]["self_adv_alpha"] == 2.0
    )


def test_a_settings_file_in_tables_reads_as_its_flat_keys(tmp_path):
    tabled = tmp_path / "tabled.toml"
    tabled.write_text(
        'dataset = "umls"\n[model]\nencoder = "lookup"\ndim = 8\n[encoders.lookup]\n'
        "sparse_embeddings = true\n[encoders.rgcn]\nlayers = 3\n[decoders.transe]\n"
        'margin = 4.0\n[samplers.dans]\ndans_mode = "snap"\n'
    )
    assert TrainConfig.from_toml(tabled) == TrainConfig(
        encoder="lookup", dim=8, sparse_embeddings=True, layers=3, margin=4.0, dans_mode="snap"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nlayers = 3\n", r"x.toml:2: \[model\] has no key 'layers'"),
        ("[samplers.dans]\nmcns_alpha = 0.5\n", r"x.toml:2: \[samplers.dans\] has no key"),
        ("[samplers.nope]\nx = 1\n", r"x.toml:1: unknown sampler 'nope'; choose one of"),
        ("[samplers.uniform]\nx = 1\n", r"x.toml:2: \[samplers.uniform\] has no key 'x'"),
        (
            "[optimiser]\nlr = 1\n",
            r"x.toml:1: 'optimiser' is neither a setting nor a table of settings; tables are",
        ),
        ("[samplers]\ndans = 3\n", r"x.toml:2: dans must be a table"),
        ("dim = 4\n[model]\ndim = 8\n", r"x.toml:3: dim is given twice"),
        ("[encoders.rgcn]\nbases = 0\n", r"x.toml:2: --bases must be at least 1, got 0"),
        ('[training]\nlr = "fast"\n', r"x.toml:2: lr must be float, got str"),
        ("[encoders.rgcn]\n\nlayers = 1.5\n", r"x.toml:3: layers must be int, got float"),
    ],
)
def test_a_bad_table_names_its_file_and_line(tmp_path, text, message):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_toml(path)


def test_an_option_of_a_component_not_chosen_is_named_as_unused():
    config = TrainConfig(encoder="lookup", sampler="uniform")
    assert config.unused("layers") == (
        "layers is a setting of the rgcn encoder, but the runs use --encoder lookup"
    )
    assert config.unused("dans_mode").startswith("dans_mode is a setting of the dans sampler")
    assert config.unused("dim") is None and config.unused("sparse_embeddings") is None
    assert config.unused("layers", varied=["encoder"]) is None
    # transe keeps rotate's options: its margin is used.
    assert TrainConfig(decoder="transe").unused("margin") is None
    assert TrainConfig(decoder="distmult").unused("margin").endswith("--decoder distmult")


def test_a_value_out_of_range_names_its_flag_or_its_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^--dans-generated-share must be greater than 0\.0"):
        TrainConfig(dans_generated_share=0.0)
    # The sections check their own values too.
    with pytest.raises(ConfigError, match=r"^--negatives must be at least 1"):
        TrainConfig(negatives=0)
    path = tmp_path / "bad.toml"
    path.write_text('sampler = "dans"\n\ndans_generated_share = 0.0\n')
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_toml(path)
    assert str(error.value) == (
        f"{path}:3: --dans-generated-share must be greater than 0.0, got 0.0"
    )


@pytest.fixture
def half_sampler(monkeypatch):
    """A sampler defined outside the package, with one option; unregistered afterwards."""
    monkeypatch.setattr(SAMPLERS, "_classes", dict(SAMPLERS._classes))

    @dataclass(frozen=True)
    class HalfOptions(Options):
        prefix: ClassVar[str] = "half_"

        share: float = option(0.5, "chance that a negative replaces the head", above=0, maximum=1)

    class HalfSampler(UniformSampler):
        name = "half"
        options_type = HalfOptions
        variants: ClassVar[dict] = {"quarter": {"share": 0.25}}

        def __init__(self, num_entities, num_negatives, options=HalfOptions()):
            super().__init__(num_entities, num_negatives)
            self.share = options.share

        @classmethod
        def from_context(cls, context, options):
            return cls(context.num_entities, context.num_negatives, options)

    return HalfSampler


def test_a_sampler_registered_outside_gets_keys_files_and_flags(
    half_sampler, tmp_path, umls, capsys
):
    config = TrainConfig(sampler="half", half_share=0.25)
    assert build_sampler("half", config, umls).share == 0.25
    assert "\n[samplers.half]\nhalf_share = 0.25\n" in config.to_toml()

    path = tmp_path / "half.toml"
    path.write_text('sampler = "half"\nhalf_share = 2.0\n')
    with pytest.raises(ConfigError, match=rf"^{path}:2: --half-share must be at most 1"):
        TrainConfig.from_toml(path)

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "sampler half:\n  --half-share" in capsys.readouterr().out
    out = tmp_path / "run"
    argv = ["train", "--sampler", "half", "--half-share", "0.25", "--epochs", "0"]
    assert main([*argv, "--dim", "8", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    assert TrainConfig.from_toml(out / "config.toml")["half_share"] == 0.25


def test_a_variant_name_stands_for_its_sampler_with_the_variants_options(
    half_sampler, tmp_path, umls
):
    assert sampler_variants()["quarter"] == {"sampler": "half", "half_share": 0.25}
    assert {"half", "quarter", "dans", "dans-authors"} <= set(sampler_names())
    config = TrainConfig(sampler="quarter", half_share=0.75)
    assert (config["sampler"], config["half_share"]) == ("half", 0.25)
    assert TrainConfig(sampler="half").replace(sampler="quarter")["half_share"] == 0.25

    class Third(half_sampler):
        name = "third"

    assert sampler_variants()["quarter"]["sampler"] == "half"
    out = tmp_path / "run"
    argv = ["train", "--sampler", "quarter", "--epochs", "0", "--dim", "8", "--quiet"]
    assert main([*argv, "--device", "cpu", "--out", str(out)]) == 0
    stored = TrainConfig.from_toml(out / "config.toml")
    assert (stored["sampler"], stored["half_share"]) == ("half", 0.25)


def test_a_variant_cannot_take_a_samplers_name(half_sampler):
    with pytest.raises(ValueError, match="sampler variant 'uniform' is a sampler's name"):

        class Clash(UniformSampler):
            name = "clash"
            variants: ClassVar[dict] = {"uniform": {}}


def test_a_renamed_key_is_read_under_its_new_name_and_both_at_once_is_refused(tmp_path):
    with pytest.warns(FutureWarning, match="fake_per_side is now called dans_fake_per_condition"):
        config = TrainConfig(dans_fake_per_side=True)
    assert config.sampler_options("dans").fake_per_condition
    assert config.replace(cake_alpha=0.5) == config.replace(cake_temperature=0.5)
    with pytest.raises(ConfigError, match="smile_temperature and smile_alpha are the same"):
        TrainConfig(smile_temperature=1.0, smile_alpha=2.0)
    # A bad value under the old name points at the file's line that set it.
    path = tmp_path / "old.toml"
    path.write_text('sampler = "self-adv"\nadversarial_temperature = 0.0\n')
    with pytest.raises(ConfigError) as error, pytest.warns(FutureWarning):
        TrainConfig.from_toml(path)
    assert str(error.value) == f"{path}:2: --self-adv-alpha must be greater than 0.0, got 0.0"
    # A file dans wrote itself under the old names reads without a warning.
    path.write_text('sampler = "self-adv"\nadversarial_temperature = 3.0\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainConfig.from_toml(path, warn=False).sampler_options("self-adv").alpha == 3.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"encoder": "rgcn"}, "--sparse-embeddings needs --encoder lookup"),
        ({"l2_scope": "table"}, "--sparse-embeddings needs --l2-scope batch"),
        ({"sampler": "all-entities"}, "--sparse-embeddings cannot serve --sampler all-entities"),
    ],
)
def test_row_sparse_embeddings_are_refused_where_a_step_reaches_every_row(settings, message):
    allowed = {"encoder": "lookup", "l2_scope": "batch", "sparse_embeddings": True}
    TrainConfig(**allowed).validate()
    TrainConfig(**{**allowed, "l2_scope": "table", "l2": 0.0}).validate()
    with pytest.raises(ConfigError, match=f"^{message}"):
        TrainConfig(**{**allowed, **settings}).validate()


def test_two_groups_declaring_one_key_are_refused(monkeypatch):
    monkeypatch.setattr(SAMPLERS, "_classes", dict(SAMPLERS._classes))

    @dataclass(frozen=True)
    class Clashing(Options):
        dim: int = option(4, "a second dimension")

    class ClashingSampler(UniformSampler):
        name = "clashing"
        options_type = Clashing

    with pytest.raises(
        ValueError, match=r"config key 'dim' is declared by model and samplers\.clashing"
    ):
        TrainConfig()
