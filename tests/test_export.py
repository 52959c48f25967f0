"""Exporting a complex_run: embeddings in each format read back exactly, id maps, weights that plain
torch.load and safetensors read, and the name listings."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import dans
from dans import export
from dans.builders import build_model
from dans.cli import main
from dans.errors import DansError
from dans.export import embeddings, export_run

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_embeddings_are_what_the_decoder_scores(complex_run):
    tables = embeddings(complex_run)
    triples = complex_run.kg.test[:16]
    h, r, t = triples.unbind(1)
    scores = complex_run.model.decoder.score(
        tables["entities"][h], tables["relations"][r], tables["entities"][t]
    )
    with torch.no_grad():
        torch.testing.assert_close(scores, complex_run.model.score_hrt(triples))
    # ComplEx with d = 8: four real coordinates, then four imaginary ones.
    assert tables["entities"].shape == (complex_run.kg.num_entities, 8)


def _id_map(path):
    return [line.split("\t") for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["npy", "tsv"])
def test_npy_and_tsv_read_back_exactly_with_the_id_maps_and_plain_weights(
    complex_run, tmp_path, fmt
):
    out = tmp_path / fmt
    written = export_run(complex_run, out, fmt)
    assert sorted(path.name for path in written) == sorted(
        [
            "entities.tsv",
            "relations.tsv",
            f"entity_embeddings.{fmt}",
            f"relation_embeddings.{fmt}",
            "model.pt",
        ]
    )
    assert _id_map(out / "entities.tsv") == [
        [str(i), name] for i, name in enumerate(complex_run.kg.entity_names)
    ]
    assert _id_map(out / "relations.tsv")[-1] == [
        str(complex_run.kg.num_relations - 1),
        complex_run.kg.relation_names[-1],
    ]
    tables = embeddings(complex_run)
    for name, stem in (("entities", "entity"), ("relations", "relation")):
        path = out / f"{stem}_embeddings.{fmt}"
        read = np.load(path) if fmt == "npy" else np.loadtxt(path, delimiter="\t", dtype=np.float32)
        np.testing.assert_array_equal(read, tables[name].numpy())
    weights = torch.load(out / "model.pt", weights_only=True)
    fresh = build_model(complex_run.config, complex_run.kg)
    fresh.load_state_dict(weights)
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(
            fresh.score_hrt(complex_run.kg.test[:8]),
            complex_run.model.score_hrt(complex_run.kg.test[:8]),
        )


def test_safetensors_holds_the_embeddings_and_the_weights(complex_run, tmp_path):
    export_run(complex_run, tmp_path, "safetensors")
    stored = load_file(tmp_path / "embeddings.safetensors")
    for name, table in embeddings(complex_run).items():
        assert torch.equal(stored[name], table)
    weights = load_file(tmp_path / "model.safetensors")
    assert weights.keys() == complex_run.model.state_dict().keys()


def test_cli_export_and_the_name_listings(complex_run, complex_run_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(complex_run_dir), "--format", "tsv", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(out / "entities.tsv")
    assert (out / "entity_embeddings.tsv").is_file()

    assert main(["entities", str(complex_run_dir)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == [f"{i}\t{name}" for i, name in enumerate(complex_run.kg.entity_names)]
    assert main(["relations", "--dataset", "umls"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["0\tadjacent_to", "1\taffects"]


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"dans {dans.__version__}\n"


def test_an_export_appears_whole_or_not_at_all(complex_run, tmp_path, monkeypatch):
    out = tmp_path / "exported"
    written = []

    def fail_on_the_third(path, data):
        written.append(path.name)
        if len(written) == 3:
            raise DansError(f"{path}: cannot write (No space left on device)")
        real_write(path, data)

    real_write = export.write_atomic
    monkeypatch.setattr(export, "write_atomic", fail_on_the_third)
    with pytest.raises(DansError, match="No space left on device"):
        export_run(complex_run, out, "npy")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_earlier_export_is_replaced_and_the_users_files_beside_it_kept(complex_run, tmp_path):
    out = tmp_path / "exported"
    export_run(complex_run, out, "tsv")
    (out / "README.txt").write_text("mine")
    export_run(complex_run, out, "npy")
    names = sorted(p.name for p in out.iterdir())
    assert "entity_embeddings.tsv" not in names and "entity_embeddings.npy" in names
    assert (out / "README.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


def test_a_folder_that_holds_no_export_is_not_written_into(complex_run, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DansError, match="holds files that are not a dans export"):
        export_run(complex_run, tmp_path, "npy")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
