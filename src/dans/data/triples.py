"""Reading ``head<TAB>relation<TAB>tail`` files, with line-accurate errors."""

from __future__ import annotations

from pathlib import Path

from dans.errors import DataError


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """Read one split file into (head, relation, tail) name triples, in file order (see
    :func:`read_numbered_triples`)."""
    return parse_triples(read_bytes(path), path)


def parse_triples(raw: bytes, path: Path) -> list[tuple[str, str, str]]:
    """:func:`read_triples` of the bytes ``raw`` read from ``path``."""
    return [triple for _, triple in parse_numbered_triples(raw, path)]


def read_bytes(path: Path) -> bytes:
    """The bytes of a triples file; every way of failing is a one-line :class:`DataError`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a triples file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def read_numbered_triples(path: Path) -> list[tuple[int, tuple[str, str, str]]]:
    """Read a triples file into (line number, (head, relation, tail)) pairs, in file order.

    Tolerates CRLF line endings, a UTF-8 byte-order mark, trailing whitespace and blank lines.
    Raises :class:`DataError` naming the file and line for anything else: a missing or empty
    file, bytes that are not UTF-8, a NUL character, or a line without exactly three non-empty
    tab-separated fields.
    """
    return parse_numbered_triples(read_bytes(path), path)


def parse_numbered_triples(raw: bytes, path: Path) -> list[tuple[int, tuple[str, str, str]]]:
    """:func:`read_numbered_triples` of the bytes ``raw`` read from ``path``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # exc.start indexes exc.object: the bytes after a byte-order mark, not ``raw``.
        data = exc.object
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None
    triples: list[tuple[int, tuple[str, str, str]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip()
        if not line:
            continue
        if "\x00" in line:
            # Names become fixed-width NumPy strings, which drop trailing NULs and so would merge
            # "a\x00" with "a": refused, as no real name holds one.
            raise DataError(f"{path}:{number}: a NUL character (byte 0x00) in a name")
        fields = line.split("\t")
        if len(fields) != 3 or not all(field.strip() for field in fields):
            raise DataError(
                f"{path}:{number}: expected 3 tab-separated fields (head, relation, tail), "
                f"found {_describe(fields)}"
            )
        triples.append((number, (fields[0], fields[1], fields[2])))
    if not triples:
        raise DataError(f"{path}: no triples (the file is empty)")
    return triples


def _describe(fields: list[str]) -> str:
    if len(fields) == 3:
        return "an empty field"
    return f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
