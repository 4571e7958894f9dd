"""The per-skill suite (``embodia eval crafter-skills --agent skill``) through the real runner, real worlds and a
real (tiny, untrained) checkpoint: the expert hands over in the same state whoever acts, the cap holds."""

import json

from typer.testing import CliRunner

from embodia.cli import app
from evals.baselines import SKILL_FOR
from evals.suite import load_suite

GOALS = ("collect_wood", "place_table", "make_wood_pickaxe")


def _suite(tmp_path, cap: int):
    path = tmp_path / "skills.yaml"
    path.write_text(f"name: skills-tiny\nenv: crafter\ngoals: [{', '.join(GOALS)}]\nseeds: {{dev: [1000]}}\n"
                    f"max_steps: 2000\nsteps_per_goal: {cap}\n")
    return path


def _eval(suite, skills: str, out, *extra: str):
    return CliRunner().invoke(app, ["eval", str(suite), "--agent", "skill", "--skills", skills, "--split", "dev",
                                    "--video", "none", "--threads", "1", "--out", str(out), *extra])


def _records(out):
    return {r["goal"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def _handover(out, goal):
    """The env step at which the skill under test took over, and the expert calls before it."""
    steps = [json.loads(line) for line in (out / "episodes" / goal / "seed-1000" / "episode.jsonl").open()]
    actions = [s for s in steps if s["type"] == "ActionStep"]
    assert actions[-1]["tool"] == "act" and all(a["tool"] == "expert" for a in actions[:-1])
    return actions[-1]["data"]["handover_env_step"], [a["arguments"]["skill"] for a in actions[:-1]]


def test_skill_suite_hands_over_in_the_same_state_and_caps_the_attempt(tmp_path, checkpoint):
    suite = _suite(tmp_path, cap=5)
    expert, learned = tmp_path / "expert", tmp_path / "learned"
    assert _eval(suite, "expert", expert).exit_code == 0
    result = _eval(suite, str(checkpoint), learned)
    assert result.exit_code == 0, result.output
    by_expert, by_learned = _records(expert), _records(learned)
    assert set(by_expert) == set(by_learned) == set(GOALS)
    for goal in GOALS:
        assert by_expert[goal]["status"] == by_learned[goal]["status"] == "ok"
        assert _handover(expert, goal) == _handover(learned, goal)  # identical prefix, identical state
        assert 0 < by_learned[goal]["env_steps"] <= 5  # the suite's cap on the attempt
    # the expert's walk reaches each skill with what it needs: five wood first, then the table, the pickaxe
    assert _handover(expert, "make_wood_pickaxe")[1] == ["collect wood"] * 5 + ["place table"]
    assert by_expert["collect_wood"]["success"] and by_expert["place_table"]["success"]
    assert by_expert["place_table"]["env_steps"] <= 5
    # who acted is part of the run's identity: resuming with other skills is refused, exit 2
    refused = _eval(suite, "expert", learned, "--resume")
    assert refused.exit_code == 2 and "different" in refused.output


def test_shipped_skill_suite_names_each_skill_once_with_twenty_held_out_worlds():
    suite = load_suite("crafter-skills")
    skills = [SKILL_FOR[goal] for goal in suite.goals]
    assert skills[:7] == ["collect wood", "place table", "make wood_pickaxe", "collect stone",
                          "make stone_pickaxe", "collect coal", "place furnace"]
    assert set(skills[7:]) == {"drink water", "eat cow", "sleep", "fight zombie"}
    assert len(suite.split("heldout")) >= 20 and min(suite.split("heldout")) >= 1000


def test_benchmarks_run_the_suite_per_inference_mode(tmp_path, checkpoint):
    from evals.skill_suite import mode_folder, run_skill_suite

    suite = _suite(tmp_path, cap=3)
    assert mode_folder(checkpoint, "ensemble", tmp_path) == checkpoint  # the checkpoint's own mode: itself
    ar = mode_folder(checkpoint, "ar", tmp_path / "bench")
    assert json.loads((ar / "config.json").read_text())["mode"] == "ar"
    result = run_skill_suite(str(ar), tmp_path / "bench" / "ar", split="dev", suite=str(suite))
    assert list(result["skills"]) == ["collect wood", "place table", "make wood_pickaxe"]
    assert all(s["attempts"] == 1 and 0 <= s["ci"][0] <= s["success"] <= s["ci"][1] for s in result["skills"].values())
    assert (tmp_path / "bench" / "ar" / "report.md").is_file()
    again = run_skill_suite(str(ar), tmp_path / "bench" / "ar", split="dev", suite=str(suite))  # resumed: nothing rerun
    assert again["skills"] == result["skills"]
