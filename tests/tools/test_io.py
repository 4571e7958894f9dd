"""tools.io: atomic writes leave the old file on failure; JSONL reads drop only a torn tail."""

from __future__ import annotations

import json

import pytest

from tools.io import CorruptFileError, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})  # not JSON-serialisable: fails before the rename
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_read_jsonl_drops_torn_tail_and_refuses_corrupt_middle(tmp_path):
    path = tmp_path / "log.jsonl"
    atomic_write_jsonl(path, [{"a": 1}, {"a": 2}])
    with path.open("ab") as handle:
        handle.write(b'{"a": 3')  # a writer killed mid-line
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_bytes(b'{"a": 1}\n{broken\n{"a": 3}\n')
    with pytest.raises(CorruptFileError, match=r"log.jsonl:2"):
        read_jsonl(path)
    assert read_jsonl(tmp_path / "absent.jsonl", missing_ok=True) == []
