"""read_triples: the tolerated quirks of real split files, and line-accurate errors."""

import pytest

from dans.data.triples import read_triples
from dans.errors import DataError

EXPECTED = [("a", "r", "b"), ("b", "s", "c")]


def write(tmp_path, data, name="train.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_file_in_order(tmp_path):
    path = write(tmp_path, b"a\tr\tb\nb\ts\tc\n")
    assert read_triples(path) == EXPECTED


def test_no_final_newline(tmp_path):
    assert read_triples(write(tmp_path, b"a\tr\tb\nb\ts\tc")) == EXPECTED


def test_crlf_line_endings(tmp_path):
    triples = read_triples(write(tmp_path, b"a\tr\tb\r\nb\ts\tc\r\n"))
    assert triples == EXPECTED
    assert all("\r" not in field for triple in triples for field in triple)


def test_utf8_byte_order_mark(tmp_path):
    triples = read_triples(write(tmp_path, b"\xef\xbb\xbfa\tr\tb\nb\ts\tc\n"))
    assert triples == EXPECTED
    assert triples[0][0] == "a"  # not "\ufeffa"


def test_trailing_spaces_and_tabs(tmp_path):
    assert read_triples(write(tmp_path, b"a\tr\tb  \nb\ts\tc\t\t\n")) == EXPECTED


def test_blank_lines_are_skipped(tmp_path):
    assert read_triples(write(tmp_path, b"\na\tr\tb\n\n   \n\r\nb\ts\tc\n\n")) == EXPECTED


def test_non_ascii_names(tmp_path):
    path = write(tmp_path, "Zürich\tliegt_in\tSchweiz\n".encode())
    assert read_triples(path) == [("Zürich", "liegt_in", "Schweiz")]


def test_duplicates_are_kept(tmp_path):
    assert read_triples(write(tmp_path, b"a\tr\tb\na\tr\tb\n")) == [EXPECTED[0]] * 2


def error_of(path):
    with pytest.raises(DataError) as info:
        read_triples(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("line2", "found"),
    [
        (b"a\tr", "2 fields"),
        (b"a\tr\tb\tc", "4 fields"),
        (b"a r b", "1 field"),
        (b"a\t\tb", "an empty field"),
        (b"\tr\tb", "an empty field"),
        (b"a\t \tb", "an empty field"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line2, found):
    path = write(tmp_path, b"x\ty\tz\n" + line2 + b"\nx\ty\tz\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2: ")
    assert found in message


def test_bad_line_number_counts_blank_lines(tmp_path):
    path = write(tmp_path, b"x\ty\tz\r\n\r\n\r\nx\ty\n")
    assert error_of(path).startswith(f"{path}:4: ")


def test_non_utf8_bytes_on_line_3(tmp_path):
    path = write(tmp_path, b"a\tr\tb\nb\ts\tc\nc\tt\t\xff\xfe\n")
    message = error_of(path)
    assert f"{path}:3:" in message
    assert "UTF-8" in message
    assert "0xff" in message


def test_non_utf8_line_number_after_byte_order_mark(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfa\tr\tb\nb\ts\tc\n\xe9\tt\tc\n")
    message = error_of(path)
    assert f"{path}:3:" in message
    assert "0xe9" in message


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\r\n"])
def test_empty_file(tmp_path, data):
    path = write(tmp_path, data)
    message = error_of(path)
    assert str(path) in message
    assert "empty" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "train.txt"
    message = error_of(path)
    assert str(path) in message
    assert "not found" in message


def test_directory(tmp_path):
    path = tmp_path / "train.txt"
    path.mkdir()
    message = error_of(path)
    assert str(path) in message
    assert "directory" in message


def test_nul_character_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"a\tr\tb\na\x00\tr\tb\n")
    with pytest.raises(DataError, match=r"train.txt:2: a NUL character"):
        read_triples(path)
