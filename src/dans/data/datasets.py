"""Named benchmark datasets: where they live, how they are fetched, and how they are checked."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dans.data.graph import SPLITS, KnowledgeGraph
from dans.data.pykeen_datasets import is_pykeen_dataset, load_pykeen_dataset
from dans.errors import DataError

CONVE_RELEASE = "https://github.com/TimDettmers/ConvE/raw/master/"


@dataclass(frozen=True)
class DatasetInfo:
    """A benchmark's published statistics and, where one exists, its canonical public release."""

    name: str
    entities: int
    relations: int
    train: int
    valid: int
    test: int
    url: str | None
    sha256: dict[str, str]
    note: str = ""


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "umls",
            135,
            46,
            5216,
            652,
            661,
            CONVE_RELEASE + "umls.tar.gz",
            {
                "train": "873ef4925516b83e7f6f8cc02b4be51d848828710a7f65a956f0ac4a9e452f35",
                "valid": "025c98f8a4891e2a6582ec5b40ee0d904031edad9c52554522f4b7904820c98e",
                "test": "a7eb529a3d2810fcc96341ccc97c625a5e202f8389673aa6bd317eeebbb79014",
            },
            "bundled with the package",
        ),
        DatasetInfo(
            "wn18rr",
            40943,
            11,
            86835,
            3034,
            3134,
            CONVE_RELEASE + "WN18RR.tar.gz",
            {
                "train": "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
                "valid": "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
                "test": "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5",
            },
        ),
        DatasetInfo(
            "fb15k-237",
            14541,
            237,
            272115,
            17535,
            20466,
            CONVE_RELEASE + "FB15k-237.tar.gz",
            {
                "train": "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
                "valid": "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
                "test": "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
            },
        ),
        DatasetInfo(
            "nell-995",
            63917,
            198,
            137465,
            5000,
            5000,
            None,
            {
                "train": "833e48f33df5bb3ed631c1f9d921cc5136a9e1c909621d45aeaecc9830871732",
                "valid": "4a5beb7dadd93b1fcac4259d6c6fc6d7ca70fcb696e4d42b06708ce1e27ebe67",
                "test": "8c407a00ac57f82d3d88a0686cfe83b262517e65abf5414f647298f68642a714",
            },
            "the published train split is no longer downloadable: place the files by hand",
        ),
    ]
}


def bundled_umls() -> Path:
    """The UMLS copy shipped inside the package."""
    return Path(str(resources.files("dans.data") / "umls"))


def search_dirs() -> list[Path]:
    """Where named datasets are looked for, in order: ``$DANS_DATA_DIR``, then the cache."""
    dirs = []
    if os.environ.get("DANS_DATA_DIR"):
        dirs.append(Path(os.environ["DANS_DATA_DIR"]))
    dirs.append(cache_dir())
    return dirs


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dans" / "datasets"


def has_splits(folder: Path) -> bool:
    return all((folder / f"{split}.txt").is_file() for split in SPLITS)


def locate(name: str) -> Path | None:
    """The folder holding dataset ``name``, or None if it is nowhere on this machine."""
    info = _info(name)
    for base in search_dirs():
        if has_splits(base / info.name):
            return base / info.name
    if info.name == "umls":
        return bundled_umls()
    return None


def resolve(name: str, download: bool = True) -> Path:
    """The folder of dataset ``name``, downloading it into the cache if needed and allowed."""
    folder = locate(name)
    if folder is not None:
        return folder
    info = _info(name)
    where = " or ".join(str(base / info.name) for base in search_dirs())
    if info.url is None:
        raise DataError(
            f"dataset {name!r} has no public download ({info.note}); put train.txt, valid.txt "
            f"and test.txt in {where}, or pass --data-dir"
        )
    if not download:
        raise DataError(f"dataset {name!r} is not on this machine; put its files in {where}")
    try:
        return fetch(info, cache_dir())
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"cannot download {name!r} from {info.url} ({reason}); put train.txt, valid.txt and "
            f"test.txt in {where}, or pass --data-dir"
        ) from None


def fetch(info: DatasetInfo, into: Path) -> Path:
    """Download ``info.url``, check each split's SHA-256, and install it as ``into/<name>``.

    The archive is unpacked into a temporary folder beside the target and renamed into place only
    when every checksum matches, so an interrupted or corrupt download leaves nothing behind.
    """
    assert info.url is not None
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix=f".{info.name}-") as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        with urllib.request.urlopen(info.url, timeout=60) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
        staged = Path(tmp) / info.name
        staged.mkdir()
        _extract_splits(archive, staged, info.url)
        for split in SPLITS:
            digest = sha256(staged / f"{split}.txt")
            if digest != info.sha256[split]:
                raise DataError(
                    f"{info.url}: {split}.txt has SHA-256 {digest}, expected {info.sha256[split]}; "
                    "the download is corrupt or the release changed"
                )
        target = into / info.name
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target


def _extract_splits(archive: Path, folder: Path, url: str) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for split in SPLITS:
                member = members.get(f"{split}.txt")
                if member is None:
                    raise DataError(f"{url}: the archive has no {split}.txt")
                source = tar.extractfile(member)
                assert source is not None
                with source, (folder / f"{split}.txt").open("wb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as exc:
        raise DataError(f"{url}: not a readable tar archive ({exc})") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(name: str | None = None, data_dir: str | Path | None = None) -> KnowledgeGraph:
    """Load a named dataset (``umls``, ``wn18rr``, ...; ``pykeen:NAME`` for one of PyKEEN's) or
    any folder of split files."""
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such directory")
        return KnowledgeGraph.from_folder(folder, name=name or folder.name)
    if name is None:
        raise DataError("name a dataset or a data directory")
    if is_pykeen_dataset(name):
        return load_pykeen_dataset(name)
    return KnowledgeGraph.from_folder(resolve(name), name=_info(name).name)


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}, or pass --data-dir"
        ) from None
