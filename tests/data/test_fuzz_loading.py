"""Hostile split files, fuzzed: each is loaded exactly as written or refused on one line that
names the file and the first bad line; through `dans train` a refusal exits 2 and writes no run.

The expectations are brute force, line by line, independent of how read_triples decodes.
"""

import contextlib
import io
import re
import warnings

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dans.cli import main
from dans.data.datasets import load_dataset
from dans.data.triples import read_triples
from dans.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")
BOM = b"\xef\xbb\xbf"
# database=None: no .hypothesis folder in the checkout. The examples are few: CPU time is shared.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(FUZZ, max_examples=20)

# Names as real files have them: no tab or newline (the separators), nothing trimmed at either
# end (the loader strips trailing whitespace off a line, which would eat a tail's), and no
# U+FEFF, which at the very start of a file is a byte-order mark rather than part of a name, and
# no NUL, which the loader refuses.
names = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\ufeff\x00"),
        min_size=1,
        max_size=8,
    )
    .map(str.strip)
    .filter(bool)
)
triple_lists = st.lists(st.tuples(names, names, names), min_size=1, max_size=12)
blank_lines = st.sampled_from(["", " ", "\t", "\r", " \t \r", "\t\t", "\u3000"])
newlines = st.sampled_from(["\n", "\r\n"])
# Bytes that are not UTF-8: a stray continuation byte, a truncated sequence, an encoded
# surrogate, an overlong encoding, bytes that never occur.
bad_utf8 = st.sampled_from([b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff"])
# Random bytes; random pieces of split files; and lines of one to four random fields, now and
# then with a bad byte, so that a fair share of what is drawn loads.
pieces = [b"a", b"b", "é".encode(), b" ", b"\t", b"\t", b"\n", b"\r\n", b"\r", BOM, b"\x00"]
fields = st.sampled_from([b"a", b"b", "é".encode(), b"a b", b"", b" ", b"\r", b"\xff", b"\xc3"])
byte_soup = st.builds(
    lambda bom, body: (BOM if bom else b"") + body,
    st.booleans(),
    st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from(pieces) | bad_utf8, max_size=60).map(b"".join),
        st.lists(st.lists(fields, min_size=1, max_size=4).map(b"\t".join), max_size=8).map(
            b"\n".join
        ),
    ),
)


def write(folder, data, name="train.txt"):
    path = folder / name
    path.write_bytes(data)
    return path


def refusal(path):
    """read_triples's error message for ``path``, checked to be one line about ``path``."""
    with pytest.raises(DataError) as info:
        read_triples(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}:"), message
    return message


def line_of(message, path):
    """The line number in a ``path:N: ...`` message, or None for a whole-file problem."""
    found = re.match(re.escape(str(path)) + r":(\d+): ", message)
    return int(found.group(1)) if found else None


def expected_outcome(data):
    """What a correct loader makes of ``data``, worked out one line at a time.

    Returns ``("triples", [...])``, or ``("utf8", N)`` / ``("nul", N)`` / ``("fields", N)`` naming
    the first bad line, or ``("empty", None)``.
    """
    body = data.removeprefix(BOM)
    raw_lines = body.split(b"\n")
    for number, raw in enumerate(raw_lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return "utf8", number
    triples = []
    for number, raw in enumerate(raw_lines, start=1):
        line = raw.decode("utf-8").rstrip()
        if not line:
            continue
        if "\x00" in line:
            return "nul", number
        fields = line.split("\t")
        if len(fields) != 3 or any(not field.strip() for field in fields):
            return "fields", number
        triples.append(tuple(fields))
    return ("triples", triples) if triples else ("empty", None)


def encode(lines, newline_choices, bom, final_newline):
    text = "".join(line + newline for line, newline in zip(lines, newline_choices, strict=True))
    if not final_newline:
        text = text.removesuffix(newline_choices[-1])
    return (BOM if bom else b"") + text.encode()


# ------------------------------------------------------------------------------- read_triples


@FUZZ
@given(data=byte_soup)
def test_random_bytes_load_as_their_lines_or_are_refused_naming_the_first_bad_line(
    tmp_path_factory, data
):
    path = write(tmp_path_factory.mktemp("soup"), data)
    kind, detail = expected_outcome(data)
    event(kind)
    if kind == "triples":
        assert read_triples(path) == detail
        return
    message = refusal(path)
    assert line_of(message, path) == detail
    if detail is not None:
        assert 1 <= detail <= data.count(b"\n") + 1
    assert {"utf8": "UTF-8", "nul": "NUL", "fields": "expected 3", "empty": "empty"}[
        kind
    ] in message


@FUZZ
@given(
    triples=triple_lists,
    extra=st.data(),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_well_formed_triples_read_back_exactly(
    tmp_path_factory, triples, extra, bom, final_newline
):
    """Duplicates, self-loops, unicode, CRLF or LF per line, a byte-order mark, blank lines."""
    draw = extra.draw
    triples = list(triples)
    for _ in range(draw(st.integers(0, 3))):
        triples.insert(draw(st.integers(0, len(triples))), draw(st.sampled_from(triples)))
    for _ in range(draw(st.integers(0, 3))):
        entity, relation = draw(names), draw(names)
        triples.insert(draw(st.integers(0, len(triples))), (entity, relation, entity))
    lines = ["\t".join(triple) for triple in triples]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(blank_lines))
    lines += draw(st.lists(blank_lines, max_size=3))
    data = encode(lines, [draw(newlines) for _ in lines], bom, final_newline)
    assert read_triples(write(tmp_path_factory.mktemp("good"), data)) == triples


def corrupt(kind, triple, draw):
    """One line of the given kind of damage, made from ``triple``; bytes."""
    if kind == "columns":
        count = draw(st.sampled_from([1, 2, 4, 5]))
        fields = [*triple, *draw(st.lists(names, min_size=2, max_size=2))][:count]
        return "\t".join(fields).encode()
    if kind == "empty field":
        fields = list(triple)
        fields[draw(st.integers(0, 2))] = draw(st.sampled_from(["", " ", "\r", "\u3000"]))
        return "\t".join(fields).encode()
    if kind == "not utf-8":
        line = "\t".join(triple).encode()
        # The ends of the line most often: a bad first byte is right after the newline.
        at = draw(st.sampled_from([0, len(line)]) | st.integers(0, len(line)))
        return line[:at] + draw(bad_utf8) + line[at:]
    assert kind == "very long"
    return "\t".join([triple[0], triple[1], draw(names) + "x" * 100_000]).encode()


@FUZZ
@given(
    triples=triple_lists,
    kind=st.sampled_from(["columns", "empty field", "not utf-8", "very long"]),
    extra=st.data(),
    bom=st.booleans(),
)
def test_one_corrupted_line_is_named_exactly(tmp_path_factory, triples, kind, extra, bom):
    draw = extra.draw
    lines = ["\t".join(triple).encode() for triple in triples]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(blank_lines).encode())
    at = draw(st.integers(0, len(lines)))
    bad = corrupt(kind, draw(st.sampled_from(triples)), draw)
    lines.insert(at, bad)
    newline = draw(newlines).encode()
    data = (BOM if bom else b"") + newline.join(lines) + draw(st.sampled_from([b"", newline]))
    path = write(tmp_path_factory.mktemp("corrupt"), data)
    if kind == "very long":
        loaded = read_triples(path)
        assert len(loaded) == len(triples) + 1
        assert loaded[sum(1 for line in lines[:at] if line.decode().strip())] == tuple(
            bad.decode().split("\t")
        )
        return
    message = refusal(path)
    assert line_of(message, path) == at + 1
    assert ("UTF-8" if kind == "not utf-8" else "expected 3") in message


# ---------------------------------------------------------------------- the graph and the CLI

TRAIN = b"a\tr\tb\nb\tr\tc\nc\ts\ta\n"
GOOD_SPLITS = {"train": TRAIN, "valid": b"a\ts\tc\n", "test": b"b\ts\ta\n"}
# Contents read_triples must refuse: empty in several ways, bad columns, bad bytes, or noise.
hostile = st.one_of(
    st.sampled_from([b"", BOM, b"\r\n\n  \n", b"\t\t\n", b"a\tr\n", b"a\tr\tb\tc\n", b"\xff\n"]),
    st.builds(lambda good, bad: good + bad + b"\n", st.sampled_from([b"", TRAIN]), bad_utf8),
    byte_soup.filter(lambda data: expected_outcome(data)[0] != "triples"),
)


def write_splits(folder, **splits):
    folder.mkdir(parents=True)
    for split, data in {**GOOD_SPLITS, **splits}.items():
        write(folder, data, f"{split}.txt")
    return folder


def train_cli(folder, out):
    """`dans train` on ``folder`` into ``out``: (exit code, stdout, stderr)."""
    argv = ["train", "--data-dir", folder, "--out", out, "--epochs", "0", "--encoder", "lookup"]
    argv += ["--dim", "4", "--device", "cpu", "--quiet"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in argv])
    return code, stdout.getvalue(), stderr.getvalue()


@SLOW
@given(split=st.sampled_from(["train", "valid", "test"]), data=hostile)
def test_cli_refuses_a_hostile_split_on_one_line_and_writes_no_run(tmp_path_factory, split, data):
    base = tmp_path_factory.mktemp("cli")
    folder = write_splits(base / "kg", **{split: data})
    out = base / "run"
    code, stdout, stderr = train_cli(folder, out)
    assert code == 2
    assert stdout == ""
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1 and stderr.endswith("\n"), stderr
    assert stderr.startswith(f"dans train: error: {folder / f'{split}.txt'}:")
    assert not out.exists()


def test_cli_trains_on_quirky_but_valid_splits(tmp_path):
    """A byte-order mark, CRLF, blank lines, duplicates, self-loops and unicode all load."""
    folder = write_splits(
        tmp_path / "kg",
        train=BOM + "a\tr\tb\r\n\r\nb\tr\tb\r\na\tr\tb\r\nc\tś\ta  \n\n".encode(),
        valid=b"a\tr\tc\r\n",
        test="c\tś\tb\n".encode(),
    )
    out = tmp_path / "run"
    code, _, stderr = train_cli(folder, out)
    assert code == 0, stderr
    assert (out / "metrics.json").is_file()
    kg = load_dataset(data_dir=folder)
    assert kg.entity_names == ["a", "b", "c"]
    assert kg.relation_names == ["r", "ś"]
    assert kg.train.tolist() == [[0, 0, 1], [1, 0, 1], [0, 0, 1], [2, 1, 0]]


@FUZZ
@given(
    triples=st.lists(st.tuples(names, names, names), min_size=1, max_size=8),
    self_loops=st.lists(st.tuples(names, names), max_size=3),
    repeats=st.integers(1, 3),
)
def test_graph_keeps_every_triple_duplicates_and_self_loops_included(
    tmp_path_factory, triples, self_loops, repeats
):
    train = triples * repeats + [(entity, relation, entity) for entity, relation in self_loops]
    text = "".join("\t".join(triple) + "\n" for triple in train).encode()
    folder = write_splits(
        tmp_path_factory.mktemp("graph") / "kg", train=text, valid=text, test=text
    )
    kg = load_dataset(data_dir=folder)
    for split in ("train", "valid", "test"):
        rows = kg.split(split).tolist()
        assert [
            (kg.entity_names[h], kg.relation_names[r], kg.entity_names[t]) for h, r, t in rows
        ] == train


# ------------------------------------------------------------ held-out names unseen in train

held_out_names = st.sampled_from(["a", "b", "c", "r", "s", "new1", "new2", "rel_new"])


@FUZZ
@given(
    valid=st.lists(
        st.tuples(held_out_names, held_out_names, held_out_names), min_size=1, max_size=6
    ),
    test=st.lists(
        st.tuples(held_out_names, held_out_names, held_out_names), min_size=1, max_size=6
    ),
)
def test_held_out_triples_with_names_unseen_in_train_are_warned_about_with_counts(
    tmp_path_factory, valid, test
):
    """A valid or test triple whose entity or relation never occurs in train cannot be ranked
    meaningfully: loading warns, naming the split and how many (the triples affected, or the
    distinct unseen entities and relations). Nothing unseen: no warning."""
    train = [("a", "r", "b"), ("b", "r", "c"), ("c", "s", "a")]
    entities, relations = {"a", "b", "c"}, {"r", "s"}

    def text(triples):
        return "".join("\t".join(triple) + "\n" for triple in triples).encode()

    folder = write_splits(
        tmp_path_factory.mktemp("unseen") / "kg",
        train=text(train),
        valid=text(valid),
        test=text(test),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(data_dir=folder)
    # The folder is left out of what was said: its digits must not pass for counts.
    said = " ".join(str(warning.message) for warning in caught).replace(str(folder), "")
    unseen_any = False
    for split, triples in (("valid", valid), ("test", test)):
        affected = [
            (h, r, t)
            for h, r, t in triples
            if h not in entities or t not in entities or r not in relations
        ]
        if not affected:
            continue
        unseen_any = True
        new_entities = {name for h, _, t in affected for name in (h, t)} - entities
        new_relations = {r for _, r, _ in affected} - relations

        def says(number):
            return re.search(rf"(?<!\d){number}(?!\d)", said) is not None

        assert re.search(rf"\b{split}\b", said), f"no warning names {split}: {said!r}"
        assert says(len(affected)) or (
            all(says(len(unseen)) for unseen in (new_entities, new_relations) if unseen)
        ), f"{split}: {len(affected)} triples with unseen names, not counted in {said!r}"
    if not unseen_any:
        assert said == ""
