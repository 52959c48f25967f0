"""Sealed checkpoint files: read back as written, or refused naming the file, never run."""

import ast
import hashlib
import io
import os
import pickle
import tomllib
from pathlib import Path

import pytest
import torch

import dans
from dans.errors import DansError
from dans.sealed import SEAL_VERSION, seal, unseal

PAYLOAD = {"weights": torch.arange(6.0).reshape(2, 3), "epoch": 3, "note": "x", "nested": [1.5]}


def write(path, data):
    path.write_bytes(data)
    return path


def test_round_trip(tmp_path):
    path = write(tmp_path / "a.pt", seal(PAYLOAD, "dans-checkpoint"))
    loaded = unseal(path, "dans-checkpoint")
    assert torch.equal(loaded["weights"], PAYLOAD["weights"])
    assert {k: v for k, v in loaded.items() if k != "weights"} == {
        "epoch": 3,
        "note": "x",
        "nested": [1.5],
    }


def test_the_header_names_kind_version_and_digest(tmp_path):
    data = seal(PAYLOAD, "dans-checkpoint")
    header, body = data.split(b"\n", 1)
    assert (
        header
        == f"dans-checkpoint {SEAL_VERSION} sha256={hashlib.sha256(body).hexdigest()}".encode()
    )


@pytest.mark.parametrize("offset", [0, 100, -8, -200])
def test_any_changed_byte_of_the_body_is_refused(tmp_path, offset):
    data = bytearray(seal(PAYLOAD, "dans-checkpoint"))
    body_start = data.index(b"\n") + 1
    data[body_start + offset if offset >= 0 else offset] ^= 0x01
    path = write(tmp_path / "a.pt", bytes(data))
    with pytest.raises(DansError, match=rf"^{path}: damaged or changed since it was written"):
        unseal(path, "dans-checkpoint")


def test_a_truncated_file_is_refused(tmp_path):
    data = seal(PAYLOAD, "dans-checkpoint")
    path = write(tmp_path / "a.pt", data[: len(data) // 2])
    with pytest.raises(DansError, match="damaged or changed"):
        unseal(path, "dans-checkpoint")


@pytest.mark.parametrize(
    "data",
    [b"", b"hello\n", b"PK\x03\x04" + b"\x00" * 50, os.urandom(300)],
    ids=["empty", "text", "zip", "random"],
)
def test_files_that_are_no_sealed_file_are_refused(tmp_path, data):
    path = write(tmp_path / "a.pt", data)
    with pytest.raises(DansError, match=rf"^{path}: not a dans-checkpoint file of this tool$"):
        unseal(path, "dans-checkpoint")


def test_a_plain_torch_save_file_is_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save(PAYLOAD, buffer)
    path = write(tmp_path / "a.pt", buffer.getvalue())
    with pytest.raises(DansError, match="not a dans-checkpoint file of this tool"):
        unseal(path, "dans-checkpoint")


def test_another_kind_or_version_is_refused(tmp_path):
    path = write(tmp_path / "a.pt", seal(PAYLOAD, "dans-training-state"))
    with pytest.raises(DansError, match="not a dans-checkpoint file"):
        unseal(path, "dans-checkpoint")
    header, body = seal(PAYLOAD, "dans-checkpoint").split(b"\n", 1)
    later = header.replace(f" {SEAL_VERSION} ".encode(), b" 99 ")
    path = write(tmp_path / "b.pt", later + b"\n" + body)
    with pytest.raises(DansError, match="version 99; this dans reads version 1"):
        unseal(path, "dans-checkpoint")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch ran-code",))


def test_a_pickle_that_would_run_code_is_refused_even_with_a_valid_digest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    buffer = io.BytesIO()
    torch.save({"model": _RunsCode()}, buffer, pickle_module=pickle)
    body = buffer.getvalue()
    header = f"dans-checkpoint {SEAL_VERSION} sha256={hashlib.sha256(body).hexdigest()}\n"
    path = write(tmp_path / "a.pt", header.encode() + body)
    with pytest.raises(DansError, match="not a readable dans-checkpoint file"):
        unseal(path, "dans-checkpoint")
    assert not (tmp_path / "ran-code").exists()


def test_a_payload_that_is_not_a_dictionary_is_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save([1, 2], buffer)
    body = buffer.getvalue()
    header = f"dans-checkpoint {SEAL_VERSION} sha256={hashlib.sha256(body).hexdigest()}\n"
    path = write(tmp_path / "a.pt", header.encode() + body)
    with pytest.raises(DansError, match="not a dans-checkpoint file of this tool"):
        unseal(path, "dans-checkpoint")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DansError, match=rf"^{tmp_path / 'a.pt'}: file not found$"):
        unseal(tmp_path / "a.pt", "dans-checkpoint")


def test_every_file_dans_loads_goes_through_the_sealed_format():
    """``torch.load`` is called in ``dans.sealed`` alone, and there with ``weights_only=True``,
    which is safe from the torch release the package requires on."""
    package = Path(dans.__file__).parent
    calls = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                calls.setdefault(path.relative_to(package).as_posix(), []).append(keywords)
    assert list(calls) == ["sealed.py"]
    assert all(keywords.get("weights_only") == "True" for keywords in calls["sealed.py"])
    project = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())["project"]
    (torch_range,) = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch_range.startswith("torch>=2.6"), torch_range
