"""Episodic memory: retrieval and JSONL persistence that survives a killed writer."""

import pytest

from agents.memory import Memory, RecallTool


def test_recall_ranks_by_shared_words_then_recency():
    memory = Memory()
    memory.add("transition", "collect wood: ok (+1 wood)")
    memory.add("reflection", "make wood_pickaxe failed: no table within reach", distrust="table")
    memory.add("transition", "place table: ok (-2 wood)")
    found = memory.recall("table reach")
    assert [r.kind for r in found][:1] == ["reflection"]
    assert RecallTool(memory)(query="table").ok
    assert "nothing remembered" in RecallTool(memory)(query="diamond").text


def test_save_load_round_trip_and_truncated_tail(tmp_path):
    memory = Memory()
    memory.add("goal", "goal: collect wood", goal="collect_wood")
    memory.add("reflection", "lesson", step=7, distrust="table")
    path = memory.save(tmp_path / "memory.jsonl")
    loaded = Memory.load(path)
    assert [r.__dict__ for r in loaded.records] == [r.__dict__ for r in memory.records]

    with path.open("a") as f:
        f.write('{"kind": "note", "te')  # a writer killed mid-line
    assert len(Memory.load(path)) == 2

    path.write_text('garbage\n{"kind": "note", "text": "x"}\n')
    with pytest.raises(ValueError, match=r"memory\.jsonl:1"):
        Memory.load(path)
