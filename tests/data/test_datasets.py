"""Named datasets: lookup under $DANS_DATA_DIR, installing a release (an archive or a folder of
split files) checked by triple counts and SHA-256, and clear failures.

Nothing here touches the network: every URL is a file:// URI into tmp_path, or a file server on
this machine's loopback serving fixtures (through $DANS_DATASETS_MIRROR).
"""

import dataclasses
import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading

import pytest

from dans.cli import main
from dans.data import datasets
from dans.data.datasets import DATASETS, DatasetInfo, fetch, load_dataset, locate, resolve
from dans.data.graph import SPLITS
from dans.errors import DataError

SPLIT_TEXT = {
    "train": b"a\tr\tb\nb\tr\tc\nc\ts\ta\n",
    "valid": b"a\ts\tc\n",
    "test": b"b\ts\td\n",
}


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $DANS_DATA_DIR and an empty cache, so nothing on this machine is found by accident."""
    monkeypatch.delenv("DANS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def write_splits(folder):
    folder.mkdir(parents=True)
    for split, data in SPLIT_TEXT.items():
        (folder / f"{split}.txt").write_bytes(data)


def make_archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return path


def checksums(texts=SPLIT_TEXT):
    return {split: hashlib.sha256(data).hexdigest() for split, data in texts.items()}


def toy_info(url, sha256=None):
    return DatasetInfo("toy", 4, 2, 3, 1, 1, url, sha256 or checksums())


def as_toy(name, url, sha256=None):
    """The registry's entry ``name`` with the toy splits' URL, counts and hashes."""
    counts = {"entities": 4, "relations": 2, "train": 3, "valid": 1, "test": 1}
    return dataclasses.replace(DATASETS[name], url=url, sha256=sha256, **counts)


def test_resolve_finds_dans_data_dir(isolated, monkeypatch):
    data = isolated / "data"
    write_splits(data / "wn18rr")
    monkeypatch.setenv("DANS_DATA_DIR", str(data))
    assert resolve("wn18rr", download=False) == data / "wn18rr"
    assert locate("WN18RR") == data / "wn18rr"
    kg = load_dataset("wn18rr")
    assert kg.name == "wn18rr"
    assert kg.source == str(data / "wn18rr")
    assert kg.entity_names == ["a", "b", "c", "d"]
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (3, 1, 1)


def test_incomplete_folder_is_not_found(isolated, monkeypatch):
    data = isolated / "data"
    write_splits(data / "wn18rr")
    (data / "wn18rr" / "test.txt").unlink()
    monkeypatch.setenv("DANS_DATA_DIR", str(data))
    assert locate("wn18rr") is None


def test_dans_data_dir_comes_before_the_cache(isolated, monkeypatch):
    cached = isolated / "xdg" / "dans" / "datasets" / "wn18rr"
    write_splits(cached)
    assert locate("wn18rr") == cached
    write_splits(isolated / "data" / "wn18rr")
    monkeypatch.setenv("DANS_DATA_DIR", str(isolated / "data"))
    assert locate("wn18rr") == isolated / "data" / "wn18rr"


def test_umls_falls_back_to_the_bundled_copy(isolated):
    assert locate("umls") == datasets.bundled_umls()


@pytest.mark.parametrize("prefix", ["", "release/umls/"])
def test_fetch_installs_from_a_local_archive(tmp_path, prefix):
    members = {prefix + f"{split}.txt": data for split, data in SPLIT_TEXT.items()}
    members[prefix + "README"] = b"not a split"
    archive = make_archive(tmp_path / "toy.tar.gz", members)
    into = tmp_path / "cache"
    target = fetch(toy_info(archive.as_uri()), into)
    assert target == into / "toy"
    assert sorted(p.name for p in target.iterdir()) == [
        "SHA256SUMS",
        "test.txt",
        "train.txt",
        "valid.txt",
    ]
    for split, data in SPLIT_TEXT.items():
        assert (target / f"{split}.txt").read_bytes() == data
    assert (target / "SHA256SUMS").read_text().splitlines() == [
        f"{checksums()[split]}  {split}.txt" for split in ("train", "valid", "test")
    ]
    assert sorted(p.name for p in into.iterdir()) == ["toy"]  # no temporary folder left


def test_fetch_replaces_an_old_install(tmp_path):
    archive = make_archive(tmp_path / "toy.tar.gz", {f"{s}.txt": d for s, d in SPLIT_TEXT.items()})
    into = tmp_path / "cache"
    (into / "toy").mkdir(parents=True)
    (into / "toy" / "stale.txt").write_text("old")
    target = fetch(toy_info(archive.as_uri()), into)
    assert not (target / "stale.txt").exists()
    assert (target / "train.txt").read_bytes() == SPLIT_TEXT["train"]


def test_fetch_wrong_checksum_leaves_nothing(tmp_path):
    archive = make_archive(tmp_path / "toy.tar.gz", {f"{s}.txt": d for s, d in SPLIT_TEXT.items()})
    wrong = {**checksums(), "valid": "0" * 64}
    into = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch(toy_info(archive.as_uri(), wrong), into)
    message = str(info.value)
    assert "valid.txt" in message
    assert "SHA-256" in message
    assert checksums()["valid"] in message
    assert not (into / "toy").exists()
    assert list(into.iterdir()) == []


def test_fetch_archive_without_a_split(tmp_path):
    archive = make_archive(tmp_path / "toy.tar.gz", {"train.txt": b"a\tr\tb\n"})
    into = tmp_path / "cache"
    with pytest.raises(DataError, match=r"no valid\.txt"):
        fetch(toy_info(archive.as_uri()), into)
    assert list(into.iterdir()) == []


def test_fetch_not_an_archive(tmp_path):
    bogus = tmp_path / "toy.tar.gz"
    bogus.write_bytes(b"<html>rate limited</html>")
    into = tmp_path / "cache"
    with pytest.raises(DataError, match="not a readable tar archive"):
        fetch(toy_info(bogus.as_uri()), into)
    assert list(into.iterdir()) == []


def test_resolve_downloads_into_the_cache(isolated, monkeypatch):
    archive = make_archive(
        isolated / "wn.tar.gz", {f"WN18RR/{s}.txt": d for s, d in SPLIT_TEXT.items()}
    )
    monkeypatch.setitem(DATASETS, "wn18rr", as_toy("wn18rr", archive.as_uri(), checksums()))
    folder = resolve("wn18rr")
    assert folder == isolated / "xdg" / "dans" / "datasets" / "wn18rr"
    assert (folder / "test.txt").read_bytes() == SPLIT_TEXT["test"]
    assert load_dataset("wn18rr").num_entities == 4


def test_unreachable_download_says_where_to_put_the_files(isolated, monkeypatch):
    data = isolated / "data"
    monkeypatch.setenv("DANS_DATA_DIR", str(data))
    missing = (isolated / "no-such-archive.tar.gz").as_uri()
    monkeypatch.setitem(DATASETS, "wn18rr", dataclasses.replace(DATASETS["wn18rr"], url=missing))
    with pytest.raises(DataError) as info:
        load_dataset("wn18rr")
    message = str(info.value)
    assert "cannot download" in message
    assert missing in message
    assert str(data / "wn18rr") in message
    assert str(isolated / "xdg" / "dans" / "datasets" / "wn18rr") in message
    assert "--data-dir" in message
    assert not (data / "wn18rr").exists()
    assert not (isolated / "xdg" / "dans" / "datasets" / "wn18rr").exists()


def test_no_download_allowed(isolated):
    with pytest.raises(DataError) as info:
        resolve("fb15k-237", download=False)
    assert "not on this machine" in str(info.value)
    assert str(isolated / "xdg" / "dans" / "datasets" / "fb15k-237") in str(info.value)


def test_nell_has_no_public_download(isolated, monkeypatch):
    monkeypatch.setenv("DANS_DATA_DIR", str(isolated / "data"))
    with pytest.raises(DataError) as info:
        load_dataset("nell-995")
    message = str(info.value)
    assert "no public download" in message
    assert str(isolated / "data" / "nell-995") in message
    assert "train.txt" in message


def test_unknown_name_lists_the_choices(isolated):
    with pytest.raises(DataError) as info:
        load_dataset("freebase")
    message = str(info.value)
    assert "'freebase'" in message
    for name in ("umls", "wn18rr", "fb15k-237", "nell-995"):
        assert name in message


def test_data_dir_must_be_a_directory(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_dataset(data_dir=tmp_path / "absent")
    with pytest.raises(DataError, match="name a dataset"):
        load_dataset()


def test_data_dir_wins_over_the_name(tmp_path):
    write_splits(tmp_path / "mine")
    kg = load_dataset("umls", data_dir=tmp_path / "mine")
    assert kg.num_entities == 4
    assert kg.source == str(tmp_path / "mine")
    assert load_dataset(data_dir=tmp_path / "mine").name == "mine"


def test_cli_download_fetches_once_and_prints_the_folder(isolated, monkeypatch, capsys):
    archive = make_archive(
        isolated / "wn.tar.gz", {f"WN18RR/{s}.txt": d for s, d in SPLIT_TEXT.items()}
    )
    monkeypatch.setitem(DATASETS, "wn18rr", as_toy("wn18rr", archive.as_uri(), checksums()))
    folder = isolated / "xdg" / "dans" / "datasets" / "wn18rr"
    assert main(["datasets", "download", "wn18rr"]) == 0
    assert capsys.readouterr().out == f"{folder}\n"
    archive.unlink()  # already here: the second call needs no download
    # The old spelling still works, for one release, and says what replaces it.
    assert main(["datasets", "--download", "wn18rr"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{folder}\n"
    assert err == (
        "dans datasets: warning: --download NAME is deprecated: use `dans datasets download NAME`\n"
    )
    assert main(["datasets", "download", "nell-995"]) == 2
    assert "has no public download" in capsys.readouterr().err


def test_cli_download_needs_a_name_and_list_takes_none(capsys):
    for argv in (["datasets", "download"], ["datasets", "list", "umls"]):
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file server on the loopback serving ``tmp_path / "served"``, named as every release's
    host by $DANS_DATASETS_MIRROR."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DANS_DATASETS_MIRROR", f"http://127.0.0.1:{server.server_port}/")
    yield served
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_the_bundled_umls_release_passes_its_pinned_checks_over_http(mirror, tmp_path):
    """The registry's real UMLS entry, served as its release names it (umls.tar.gz, the splits
    in a folder): its triple counts and SHA-256 are those of the copy shipped in the package."""
    bundled = datasets.bundled_umls()
    members = {f"umls/{split}.txt": (bundled / f"{split}.txt").read_bytes() for split in SPLITS}
    make_archive(mirror / "umls.tar.gz", members)
    target = fetch(DATASETS["umls"], tmp_path / "cache")
    for split in SPLITS:
        assert (target / f"{split}.txt").read_bytes() == members[f"umls/{split}.txt"]


def test_a_release_of_split_files_downloads_and_its_hashes_are_written(
    isolated, mirror, monkeypatch, capsys
):
    """CoDEx publishes its splits as files, not an archive, and no hash of them is pinned:
    the counts are checked and the hashes written beside them."""
    monkeypatch.setitem(DATASETS, "codex-s", as_toy("codex-s", DATASETS["codex-s"].url))
    (mirror / "codex-s").mkdir()
    for split, data in SPLIT_TEXT.items():
        (mirror / "codex-s" / f"{split}.txt").write_bytes(data)
    folder = isolated / "xdg" / "dans" / "datasets" / "codex-s"
    assert main(["datasets", "download", "codex-s"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{folder}\n"
    assert err == (
        "dans datasets: warning: codex-s: no SHA-256 pinned to check against; its triple counts "
        f"match the release, and the files' hashes are in {folder / 'SHA256SUMS'}\n"
    )
    assert (folder / "valid.txt").read_bytes() == SPLIT_TEXT["valid"]
    assert load_dataset("codex-s").num_entities == 4


def test_a_release_with_other_triple_counts_is_refused_and_leaves_nothing(
    isolated, mirror, monkeypatch, capsys
):
    monkeypatch.setitem(DATASETS, "codex-m", as_toy("codex-m", DATASETS["codex-m"].url))
    (mirror / "codex-m").mkdir()
    for split, data in {**SPLIT_TEXT, "test": b"b\ts\td\nd\ts\ta\n"}.items():
        (mirror / "codex-m" / f"{split}.txt").write_bytes(data)
    assert main(["datasets", "download", "codex-m"]) == 2
    assert capsys.readouterr().err == (
        "dans datasets: error: codex-m: test.txt has 2 triples, the release 1; the download is "
        "corrupt or the release changed\n"
    )
    assert list((isolated / "xdg" / "dans" / "datasets").iterdir()) == []


def test_a_file_the_server_does_not_have_is_one_line_naming_its_url(isolated, mirror, capsys):
    assert main(["datasets", "download", "yago3-10"]) == 2
    err = capsys.readouterr().err
    url = os.environ["DANS_DATASETS_MIRROR"] + "YAGO3-10.tar.gz"
    said = f"dans datasets: error: cannot download 'yago3-10': {url} (HTTP 404 File not found)"
    assert err.startswith(said)
    assert err.count("\n") == 1 and "--data-dir" in err
    assert list((isolated / "xdg" / "dans" / "datasets").iterdir()) == []


def test_every_named_dataset_has_a_release_or_says_why_not():
    for info in DATASETS.values():
        assert info.url is not None or info.note, info.name
        assert info.sha256 is None or set(info.sha256) == set(SPLITS), info.name
    assert {"yago3-10", "codex-s", "codex-m", "codex-l"} <= set(DATASETS)
