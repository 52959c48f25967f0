"""Hostile --config files, fuzzed: each is read exactly as written or refused on one line that
starts with the file; through `dans train` a refusal exits 2 and writes no run directory.

Files are TOML documents made here (unknown keys, values of the wrong type, nesting, Python's
own limits), random bytes, documents with bytes spliced in, and bytes that are not UTF-8.
"""

import contextlib
import io
import math
import re
import tomllib

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from dans.cli import main
from dans.config import TrainConfig
from dans.errors import ConfigError
from dans.options import duration_seconds, flag_name, value_type

pytestmark = pytest.mark.usefixtures("one_thread")
# database=None: no .hypothesis folder in the checkout. The examples are few: CPU time is shared.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(FUZZ, max_examples=25)

SPECS = TrainConfig.specs()
TYPES = {name: value_type(spec) for name, spec in SPECS.items()}
# The flags every CLI run below passes; a config value for them is overridden, never checked.
CLI_FLAGS = {"data_dir", "epochs", "encoder", "dim", "device"}


class Raw(str):
    """TOML text written into the document as it is: a date, a hex integer, deep nesting."""


def toml_string(text):
    escaped = "".join(
        f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )
    return f'"{escaped}"'


def toml_value(value):
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(values, newline="\n"):
    return "".join(
        f"{toml_string(key)} = {toml_value(value)}{newline}" for key, value in values.items()
    )


ints = st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**80, 10**400])
floats = st.floats() | st.sampled_from([1e308, 5e-324, -0.0])
texts = st.text(max_size=12)
# What a TOML file can hold where Python's own limits bite: an integer too long to print (hex is
# exempt from the 4300-digit limit), one too long to read, nesting deeper than the recursion
# limit, dates and times.
NASTY = {
    "hex integer of 4000 digits": Raw("0x" + "f" * 4000),
    "integer of 5000 digits": Raw("9" * 5000),
    "arrays 3000 deep": Raw("[" * 3000 + "]" * 3000),
    "tables 3000 deep": Raw("{a = " * 3000 + "1" + "}" * 3000),
    "date": Raw("1979-05-27"),
    "date and time": Raw("1979-05-27T07:32:00Z"),
    "time": Raw("07:32:00"),
    "string of 100 000 characters": Raw('"' + "x" * 100_000 + '"'),
}
# Drawn by name: hypothesis would otherwise print the 100 kB of the values in its reports.
nasty = st.sampled_from(sorted(NASTY)).map(lambda name: NASTY[name])
scalars = st.one_of(ints, floats, texts, st.booleans())
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
values = st.sampled_from([*[nested] * 9, nasty]).flatmap(lambda kind: kind)
# Values of a key's own type (ranges aside), small ones most often.
right_typed = {
    int: st.integers(0, 1000) | ints,
    float: floats | ints.filter(lambda n: abs(n) < 2**1000),
    str: texts | st.sampled_from(["auto", "cpu", "cuda", "meta", "mps", "cuda:-1", "optimistic"]),
    bool: st.booleans(),
}
known_keys = st.sampled_from(sorted(TYPES))
entries = st.one_of(
    known_keys.flatmap(lambda key: st.tuples(st.just(key), right_typed[TYPES[key]])),
    st.tuples(known_keys, values),
    st.tuples(texts, values),
)
documents = st.builds(
    lambda values, newline, bom: (
        (b"\xef\xbb\xbf" if bom else b"") + toml_document(values, newline).encode()
    ),
    st.lists(entries, max_size=5, unique_by=lambda entry: entry[0]).map(dict),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from([*[False] * 7, True]),  # a byte-order mark
)


@st.composite
def spliced(draw):
    """A document with random bytes (often not UTF-8) put in at a random place."""
    document = draw(documents)
    at = draw(st.integers(0, len(document)))
    junk = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff", b"\xc3", b"\x80"]))
    return document[:at] + junk + document[at:]


# Documents twice: one_of picks each branch equally often.
config_bytes = st.one_of(documents, documents, spliced(), st.binary(max_size=100))


def fits(key, value):
    """Whether ``value`` as read from TOML is acceptable for ``key`` (any value, no ranges)."""
    kind = TYPES[key]
    if isinstance(value, bool):
        return kind is bool
    if kind is float and isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return False
        return True
    return isinstance(value, kind)


def in_range(key, value):
    """Whether validation takes ``value``, of ``key``'s own type, for ``key``: its spec's bounds."""
    meta = SPECS[key].metadata
    if TYPES[key] is float:
        value = float(value)
    if TYPES[key] is int and not -(2**63) <= value < 2**63:
        return False
    if TYPES[key] is float and not math.isfinite(value):
        return False
    return (
        ("minimum" not in meta or value >= meta["minimum"])
        and ("above" not in meta or value > meta["above"])
        and ("below" not in meta or value < meta["below"])
        and ("maximum" not in meta or value <= meta["maximum"])
        and ("choices" not in meta or value in meta["choices"])
        and not (meta.get("duration") and value and not is_duration(value))
    )


def is_duration(text):
    try:
        duration_seconds(text)
    except ValueError:
        return False
    return True


def as_read(data):
    """The file's settings as a correct reader sees them, or None for a file that is not TOML.

    Text is read as Python reads text files, with any lone CR taken for a newline.
    """
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        return tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def one_line(message):
    assert "\n" not in message and len(message.splitlines()) == 1, message
    return message


def same(a, b):
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


def write_config(folder, data):
    path = folder / "my.toml"
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------ TrainConfig


@FUZZ
@given(data=config_bytes)
@example(data=b"lr = 0x" + b"f" * 4000 + b"\n")  # an integer too large for a float
@example(data=b"dataset = 0x" + b"f" * 4000 + b"\n")  # too long for repr in the message
@example(data=b"dim = " + b"9" * 5000 + b"\n")  # beyond Python's 4300-digit limit
@example(data=b"dim = " + b"[" * 3000 + b"]" * 3000 + b"\n")  # beyond the recursion limit
def test_any_config_file_is_read_as_written_or_refused_on_one_line_naming_it(
    tmp_path_factory, data
):
    path = write_config(tmp_path_factory.mktemp("config"), data)
    settings_read = as_read(data)
    wrong = [
        key
        for key, value in (settings_read or {}).items()
        if key not in TYPES or not fits(key, value) or not in_range(key, value)
    ]
    event("not TOML" if settings_read is None else ("refused keys" if wrong else "accepted"))
    try:
        config = TrainConfig.from_toml(path)
    except ConfigError as exc:
        message = one_line(str(exc))
        assert message.startswith(f"{path}:"), message
        assert settings_read is None or wrong, f"refused a good file: {message}"
        if wrong:
            # An offending key, by name (an unknown one as Python writes it), or by its flag.
            assert any(
                repr(key) in message or f": {key} " in message or f": {flag_name(key)} " in message
                for key in wrong
            ), message
        if line := re.match(re.escape(str(path)) + r":(\d+): ", message):
            assert 1 <= int(line.group(1)) <= data.count(b"\n") + 1
        return
    assert settings_read is not None and not wrong, "accepted a file it should refuse"
    for key, value in settings_read.items():
        assert same(config[key], float(value) if TYPES[key] is float else value), key
    defaults = TrainConfig()
    for key in TYPES.keys() - settings_read.keys():
        assert config[key] == defaults[key]


def test_non_utf8_config_names_the_line(tmp_path):
    path = write_config(tmp_path, b"dim = 4\n\nlr = 0.1\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_toml(path)
    assert str(info.value) == f"{path}:4: not valid UTF-8 (byte 0xe9)"


well_typed_documents = st.dictionaries(known_keys, st.none(), max_size=6).flatmap(
    lambda chosen: st.fixed_dictionaries({key: right_typed[TYPES[key]] for key in chosen})
)


@FUZZ
@given(values=well_typed_documents)
def test_well_typed_values_load_and_are_validated_or_refused_naming_the_flag(
    tmp_path_factory, values
):
    path = write_config(tmp_path_factory.mktemp("typed"), toml_document(values).encode())
    outside = [key for key, value in values.items() if not in_range(key, value)]
    try:
        TrainConfig.from_toml(path).validate()
    except ConfigError as exc:
        message = one_line(str(exc))
        if outside:
            # Refused as the file is read, naming its line and the flag.
            at = re.match(re.escape(str(path)) + r":(\d+): (--[a-z0-9-]+)[ :]", message)
            assert at, message
            key = list(values)[int(at.group(1)) - 1]  # toml_document writes a key a line
            assert key in outside and at.group(2) == flag_name(key), message
            event("refused as read")
        else:
            # Only combinations and devices are left to validate().
            flag = re.match(r"(--[a-z0-9-]+)[ :]", message)
            assert flag and flag.group(1) in {flag_name(key) for key in TYPES}, message
            event("refused by validate")
    else:
        assert not outside, f"accepted {outside}"
        event("valid")


# --------------------------------------------------------------------------------- the CLI


def refused_value(key):
    """Values of ``key``'s own type that validation must refuse."""
    meta, kind = SPECS[key].metadata, TYPES[key]
    options = []
    if kind is int:
        options.append(st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1))
        if "minimum" in meta:
            options.append(st.integers(max_value=meta["minimum"] - 1))
    if kind is float:
        options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
        if "minimum" in meta:
            options.append(st.floats(max_value=meta["minimum"], exclude_max=True))
        if "above" in meta:
            options.append(st.floats(max_value=meta["above"]))
        if "below" in meta:
            options.append(st.floats(min_value=meta["below"]))
        if "maximum" in meta:
            options.append(st.floats(min_value=meta["maximum"], exclude_min=True))
    if "choices" in meta:
        options.append(texts.filter(lambda text: text not in meta["choices"]))
    return st.one_of(options) if options else st.nothing()


CHECKED = sorted(key for key in TYPES if key not in CLI_FLAGS and not refused_value(key).is_empty)
out_of_range_documents = st.sampled_from(CHECKED).flatmap(
    lambda key: refused_value(key).map(lambda value: toml_document({key: value}).encode())
)
# Refused when the file is read: not TOML, not UTF-8, an unknown key or a value of the wrong type.
unreadable = config_bytes.filter(
    lambda data: (
        (read := as_read(data)) is None
        or any(key not in TYPES or not fits(key, value) for key, value in read.items())
    )
)

TRIPLES = b"a\tr\tb\nb\tr\tc\nc\ts\ta\n"


@SLOW
@given(data=unreadable | out_of_range_documents)
@example(data=b"seed = 18446744073709551616\n")  # torch.manual_seed: "Overflow when unpacking"
@example(data=b"negatives = 0x" + b"f" * 4000 + b"\n")
def test_cli_refuses_a_hostile_config_on_one_line_and_writes_no_run(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("cli")
    folder = base / "kg"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_bytes(TRIPLES)
    path = write_config(base, data)
    out = base / "run"
    argv = ["train", "--config", path, "--data-dir", folder, "--out", out, "--epochs", "0"]
    argv += ["--encoder", "lookup", "--dim", "4", "--device", "cpu", "--quiet"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in argv])
    err = stderr.getvalue()
    assert code == 2, err
    assert stdout.getvalue() == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert err.startswith(f"dans train: error: {path}:") or err.startswith(
        "dans train: error: --"
    ), err
    assert not out.exists()


@pytest.mark.parametrize("device", ["meta", "mps", "xla"])
def test_cli_refuses_devices_torch_names_but_training_cannot_use(tmp_path, capsys, device):
    """``meta`` used to fail only after the run directory was written."""
    folder = tmp_path / "kg"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_bytes(TRIPLES)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", folder, "--out", out, "--epochs", "0", "--encoder", "lookup"]
    argv += ["--dim", "4", "--device", device, "--quiet"]
    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"dans train: error: --device: unsupported device {device!r}; use auto, cpu or cuda\n"
    )
    assert not out.exists()
