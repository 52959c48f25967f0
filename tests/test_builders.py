"""Configuration to objects: each component gets its own settings, by name."""

import pytest

import dans
from dans.builders import build_model, build_sampler, check_names, load_graph
from dans.errors import ConfigError
from dans.samplers import DANSSampler, NSCachingSampler


@pytest.mark.filterwarnings("ignore:.*name entities or relations that train never does")
def test_a_data_dir_wins_over_the_dataset_name(tmp_path, umls):
    folder = tmp_path / "copy"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        rows = getattr(umls, split)[:50].tolist()
        lines = [
            f"{umls.entity_names[h]}\t{umls.relation_names[r]}\t{umls.entity_names[t]}"
            for h, r, t in rows
        ]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    kg = load_graph(dans.TrainConfig(dataset="umls", data_dir=str(folder)))
    assert len(kg.train) == 50 and kg.name == "copy"
    assert len(load_graph(dans.TrainConfig(dataset="umls")).train) == len(umls.train)


def test_the_model_is_built_from_the_config(umls):
    config = dans.TrainConfig(dim=12, layers=1, bases=3, decoder="complex", device="cpu")
    model = build_model(config, umls)
    assert model.decoder.name == "complex" and len(model.encoder.layers) == 1
    assert model.encoder.layers[0].bases.shape == (3, 12, 12)
    entities, relations = model()
    assert entities.shape == (umls.num_entities, 12)
    assert relations.shape == (umls.num_relations, 12)  # ComplEx: d / 2 complex numbers


def test_a_sampler_gets_its_own_prefixed_settings_bare(umls):
    config = dans.TrainConfig(
        dim=8, negatives=6, dans_mode="snap", dans_gan_positives=7, nscaching_cache_size=9
    )
    dans_sampler = build_sampler("dans", config, umls)
    assert isinstance(dans_sampler, DANSSampler)
    assert (dans_sampler.mode, dans_sampler.gan_positives, dans_sampler.num_negatives) == (
        "snap",
        7,
        6,
    )
    nscaching = build_sampler("nscaching", config, umls)
    assert isinstance(nscaching, NSCachingSampler) and nscaching.cache_size == 9


def test_samplers_know_train_only(umls):
    sampler = build_sampler("uniform", dans.TrainConfig(dim=8), umls)
    assert sampler.known_triples is umls.train_known_triples


@pytest.mark.parametrize(
    "key, name", [("encoder", "mlp"), ("decoder", "hole"), ("sampler", "greedy")]
)
def test_unknown_names_fail_before_any_data_is_read(key, name):
    config = dans.TrainConfig(**{key: name})
    with pytest.raises(ConfigError, match=f"unknown {key} '{name}'"):
        check_names(config)
