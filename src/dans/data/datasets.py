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
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dans.data.graph import SPLITS, KnowledgeGraph
from dans.data.pykeen_datasets import is_pykeen_dataset, load_pykeen_dataset
from dans.errors import DataError

CONVE_RELEASE = "https://github.com/TimDettmers/ConvE/raw/master/"
CODEX_RELEASE = "https://raw.githubusercontent.com/tsafavi/codex/master/data/triples/"
# A base URL that stands in for every release's host: a dataset's files are fetched from
# MIRROR/<archive file name> or MIRROR/<dataset>/<split>.txt instead.
MIRROR_VARIABLE = "DANS_DATASETS_MIRROR"


@dataclass(frozen=True)
class DatasetInfo:
    """A benchmark's published statistics and, where one exists, its public release.

    ``url`` is a ``.tar.gz`` archive holding ``train.txt``, ``valid.txt`` and ``test.txt``, or a
    folder (ending in ``/``) holding the three files. ``sha256``: each split's SHA-256, where a
    reference copy pins it; a download is checked against it, and always against the published
    number of triples of each split.
    """

    name: str
    entities: int
    relations: int
    train: int
    valid: int
    test: int
    url: str | None
    sha256: dict[str, str] | None
    note: str = ""

    def triples(self, split: str) -> int:
        """The published number of triples of ``split``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]

    def download_urls(self) -> dict[str, str]:
        """What to fetch, by local file name: the archive, or each split's file; from the
        mirror when ``$DANS_DATASETS_MIRROR`` names one."""
        assert self.url is not None
        mirror = os.environ.get(MIRROR_VARIABLE, "").rstrip("/")
        if not self.url.endswith("/"):
            name = self.url.rsplit("/", 1)[1]
            return {ARCHIVE_FILE: f"{mirror}/{name}" if mirror else self.url}
        base = f"{mirror}/{self.name}/" if mirror else self.url
        return {f"{split}.txt": f"{base}{split}.txt" for split in SPLITS}


ARCHIVE_FILE = "archive.tar.gz"
# Written beside a downloaded dataset's splits, in the format `sha256sum --check` reads.
CHECKSUMS_FILE = "SHA256SUMS"


def _codex(name: str, counts: tuple[int, int, int, int, int]) -> DatasetInfo:
    return DatasetInfo(
        f"codex-{name}",
        *counts,
        f"{CODEX_RELEASE}codex-{name}/",
        None,
        "CoDEx release; its files' SHA-256 are not pinned here, so a download is checked by its "
        "triple counts and its hashes printed",
    )


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
            "the published train split is no longer online; the documentation's datasets "
            "section says how the copy the results use was rebuilt",
        ),
        DatasetInfo(
            "yago3-10",
            123182,
            37,
            1079040,
            5000,
            5000,
            CONVE_RELEASE + "YAGO3-10.tar.gz",
            None,
            "ConvE release; its files' SHA-256 are not pinned here, so a download is checked by "
            "its triple counts and its hashes printed",
        ),
        _codex("s", (2034, 42, 32888, 1827, 1828)),
        _codex("m", (17050, 51, 185584, 10310, 10311)),
        _codex("l", (77951, 69, 551193, 30622, 30622)),
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
    except DownloadError as exc:
        raise DataError(
            f"cannot download {name!r}: {exc}; put train.txt, valid.txt and test.txt in "
            f"{where}, or pass --data-dir"
        ) from None


class DownloadError(DataError):
    """A release that could not be fetched: the URL and why."""


def fetch(info: DatasetInfo, into: Path) -> Path:
    """Download ``info``'s release, check each split's triple count and SHA-256 (where pinned),
    and install it as ``into/<name>``.

    Everything is fetched and unpacked into a temporary folder beside the target and renamed
    into place only when every check passes, so an interrupted or corrupt download leaves
    nothing behind.
    """
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix=f".{info.name}-") as tmp:
        staged = Path(tmp) / info.name
        staged.mkdir()
        for name, url in info.download_urls().items():
            target = Path(tmp) / name if name == ARCHIVE_FILE else staged / name
            _download(url, target)
            if name == ARCHIVE_FILE:
                _extract_splits(target, staged, url)
        digests = {split: _check_split(info, staged / f"{split}.txt", split) for split in SPLITS}
        (staged / CHECKSUMS_FILE).write_text(
            "".join(f"{digest}  {split}.txt\n" for split, digest in digests.items())
        )
        installed = into / info.name
        if installed.exists():
            shutil.rmtree(installed)
        staged.rename(installed)
    if info.sha256 is None:
        warnings.warn(
            f"{info.name}: no SHA-256 pinned to check against; its triple counts match the "
            f"release, and the files' hashes are in {installed / CHECKSUMS_FILE}",
            stacklevel=2,
        )
    return installed


def _download(url: str, path: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, path.open("wb") as out:
            shutil.copyfileobj(response, out)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url} (HTTP {exc.code} {exc.reason})") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"{url} ({reason})") from None


def _check_split(info: DatasetInfo, path: Path, split: str) -> str:
    """The split's SHA-256; refused when its triple count or pinned SHA-256 differs from
    ``info``'s."""
    lines = _count_lines(path)
    if lines != info.triples(split):
        raise DataError(
            f"{info.name}: {split}.txt has {lines:,} triples, the release {info.triples(split):,}; "
            "the download is corrupt or the release changed"
        )
    digest = sha256(path)
    if info.sha256 is not None and digest != info.sha256[split]:
        raise DataError(
            f"{info.name}: {split}.txt has SHA-256 {digest}, expected {info.sha256[split]}; "
            "the download is corrupt or the release changed"
        )
    return digest


def _count_lines(path: Path) -> int:
    """Non-blank lines: one triple each."""
    with path.open("rb") as file:
        return sum(1 for line in file if line.strip())


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
