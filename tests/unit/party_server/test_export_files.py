"""Unit tests of splitrec.party_server.export_files: a part's file list, and any change
to any file found and named."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitrec.common.digests import file_sha256
from splitrec.common.errors import ModelIntegrityError
from splitrec.party_server.export_files import (
    FILE_LIST,
    check_files,
    check_identity,
    check_part,
    write_file_list,
)

FILES = {
    "model.json": json.dumps(
        {"party": "alice", "job": "j", "version": "v1", "epoch": 2, "export_id": "e1"}
    ).encode(),
    "state.npz": bytes(range(256)) * 4,
    "saved_model/saved_model.pb": b"graph",
    "saved_model/variables/variables.index": b"",
}


def _part(folder: Path) -> str:
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return write_file_list(folder)


def test_the_list_holds_every_file_and_its_digest_is_returned(tmp_path):
    digest = _part(tmp_path)
    listed = json.loads((tmp_path / FILE_LIST).read_text())["files"]
    assert listed == {n: file_sha256(tmp_path / n) for n in FILES}
    assert digest == file_sha256(tmp_path / FILE_LIST)
    assert check_files(tmp_path, "here") == digest
    expected = {"party": "alice", "job": "j", "version": "v1", "epoch": 2}
    described, again = check_part(tmp_path, "here", expected)
    assert described["export_id"] == "e1" and again == digest


def test_a_model_json_of_another_export_is_named(tmp_path):
    _part(tmp_path)
    described = json.loads(FILES["model.json"])
    with pytest.raises(ModelIntegrityError) as caught:
        check_identity(described, {"export_id": "e2", "epoch": 3}, tmp_path, "here")
    text = str(caught.value)
    assert text.startswith("here: file model.json in ")
    assert "names export_id 'e1' (expected 'e2'), epoch 2 (expected 3)" in text


def _flip(data: bytes, at: int) -> bytes:
    if not data:
        return b"x"
    at %= len(data)
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


# What a careless or hostile hand may do to a part: which file, what change.
_CHANGES = st.tuples(
    st.sampled_from(sorted(FILES)),
    st.sampled_from(["flip", "append", "truncate", "delete", "add"]),
    st.integers(0, 2000),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(change=_CHANGES)
def test_any_change_to_any_file_is_refused_naming_the_file(change):
    name, kind, at = change
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        _part(folder)
        path = folder / name
        if kind == "flip":
            path.write_bytes(_flip(path.read_bytes(), at))
            needle = f"file {name} differs from its export"
        elif kind == "append":
            path.write_bytes(path.read_bytes() + b"\0")
            needle = f"file {name} differs from its export"
        elif kind == "truncate":
            data = path.read_bytes()
            path.write_bytes(data[: at % len(data)] if data else b"x")
            needle = f"file {name} differs from its export"
        elif kind == "delete":
            path.unlink()
            needle = f"file {name} is missing"
        else:
            name = f"{name}.extra"
            (folder / name).write_bytes(b"")
            needle = f"file {name} was not exported"
        with pytest.raises(ModelIntegrityError, match=needle) as caught:
            check_files(folder, "party alice: model version 'v1' of job 'j'")
        assert str(caught.value).startswith("party alice: model version 'v1'")
        assert "export the version again under a new name" in str(caught.value)


def test_a_list_that_is_missing_or_unreadable_is_refused(tmp_path):
    _part(tmp_path)
    (tmp_path / FILE_LIST).write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="file files.json .* cannot be read"):
        check_files(tmp_path, "here")
    (tmp_path / FILE_LIST).unlink()
    with pytest.raises(ModelIntegrityError, match="exported before exports recorded"):
        check_files(tmp_path, "here")
