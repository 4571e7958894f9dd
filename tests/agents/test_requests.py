"""Compound requests and asking back, executed for real: real Crafter worlds, the expert skills, no LLM."""

import json
import subprocess
import sys
from pathlib import Path

from agents.chat import ChatSession, pick_option
from agents.episode import run_episode
from agents.rafa import RafaConfig
from tests.agents.chat_helpers import replies
from tools.envs.crafter_goals import GOALS


def test_a_compound_request_runs_its_parts_in_order_in_one_world(tmp_path: Path):
    result = run_episode("chop a tree and then put down a crafting table", seed=0, out_dir=tmp_path, llm=None,
                         config=RafaConfig(max_env_steps=500), video=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.success and summary["plan"] == ["collect_wood", "place_table"]
    assert [p["achievement"] for p in summary["parts"]] == ["collect_wood", "place_table"]
    assert all(p["success"] for p in summary["parts"]) and summary["reason"].startswith("2/2 parts done")
    assert summary["env_steps"] == sum(p["env_steps"] for p in summary["parts"])
    assert {"collect_wood", "place_table"} <= set(summary["achievements"])
    records = [json.loads(line) for line in (tmp_path / "episode.jsonl").read_text().splitlines()]
    goal = next(r for r in records if r["type"] == "goal")
    assert goal["plan"] == ["collect_wood", "place_table"] and goal["message"].startswith("goals: 1) collect wood")
    assert [r["goal"] for r in records if r["type"] == "FinalStep"] == ["collect wood", "place a crafting table"]
    assert sum(r["type"] == "reset" for r in records) == 1  # one world for both parts


def test_a_compound_episode_fails_when_a_part_fails_and_stops_there(tmp_path: Path):
    summary = run_episode("collect wood and then collect a diamond and then place a table", seed=0, out_dir=tmp_path,
                          llm=None, config=RafaConfig(max_env_steps=60, max_decisions=10), video=False).summary
    assert summary["success"] is False and summary["parts"][0]["success"] is True
    assert len(summary["parts"]) == 2 and summary["reason"].startswith("1/3 parts done")


def test_a_single_goal_summary_has_no_compound_fields(tmp_path: Path):
    summary = run_episode(GOALS["collect_wood"], seed=0, out_dir=tmp_path, llm=None,
                          config=RafaConfig(max_env_steps=300), video=False).summary
    assert summary["success"] is True and not {"plan", "parts", "skipped"} & set(summary)


def test_chat_asks_back_when_unsure_and_a_number_picks_the_option(session: ChatSession):
    (question,) = replies(session, "make a stone tool")
    assert question.startswith("I am not sure") and "2) make a stone pickaxe" in question
    assert session.env.actions == []  # nothing was run on a guess
    assert replies(session, "2")[-1].startswith("Done: make a stone pickaxe")


def test_an_option_is_picked_only_right_after_the_question(session: ChatSession):
    replies(session, "make a stone tool")
    replies(session, "what do you have?")
    assert replies(session, "2")[0].startswith("I cannot do '2'")
    options = (GOALS["make_stone_pickaxe"], GOALS["make_stone_sword"])
    assert pick_option("the second", options) is GOALS["make_stone_sword"]
    assert pick_option("make a stone sword", options) is GOALS["make_stone_sword"]
    assert pick_option("make 2 swords and a table", options) is None


def test_chat_runs_a_compound_request_part_by_part(session: ChatSession):
    said = replies(session, "get wood and then place a table")
    assert said[0] == "Understood: goals: 1) collect wood → 2) place a crafting table"
    assert said[1].startswith("Done (part 1/2): collect wood") and said[2].startswith("Done (part 2/2): place a")
    plan = [json.loads(r) for r in session.log.path.read_text().splitlines() if '"plan"' in r]
    assert plan and plan[0]["parts"] == ["collect_wood", "place_table"]


def test_chat_answers_why_from_the_last_decision(session: ChatSession):
    assert replies(session, "why did you do that?") == ["I have not decided anything yet in this world."]
    replies(session, "collect wood")
    (why,) = replies(session, "why did you do that?")
    assert why.startswith("For 'collect wood':") and "I chose collect wood" in why


def test_embodia_run_shows_the_decomposition_and_each_part(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "embodia", "run", "get wood and then place a table", "--llm", "none",
                           "--no-video", "--max-steps", "300", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0, text
    assert "understood: goals: 1) collect wood → 2) place a crafting table" in text
    assert "part 1: collect wood — done" in text and "part 2: place a crafting table — done" in text
    unsure = subprocess.run([sys.executable, "-m", "embodia", "run", "make a stone tool", "--llm", "none",
                             "--no-video", "--out", str(tmp_path / "unsure")], capture_output=True, text=True,
                            timeout=300)
    assert unsure.returncode == 1 and "Did you mean: 1)" in " ".join(unsure.stdout.split())
    assert json.loads((tmp_path / "unsure" / "summary.json").read_text())["options"][1] == "make_stone_pickaxe"
