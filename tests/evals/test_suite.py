"""Suite files: the shipped ones load, and every mistake names the file, the line and the key."""

import pytest

from evals.suite import SuiteError, builtin_suites, load_suite
from tools.envs.crafter import ACHIEVEMENTS

VALID = """\
name: tiny
env: crafter
goals: [collect_wood, make a wooden pickaxe]
seeds:
  dev: [0, 1]
  heldout: 100-102
max_steps: 200
agent:
  max_decisions: 10
"""


def write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_shipped_suites_load():
    assert {"smoke", "crafter-goals", "crafter-open"} <= set(builtin_suites())
    goals = load_suite("crafter-goals")
    assert sorted(goals.goals) == sorted(ACHIEVEMENTS) and all(s >= 100 for s in goals.split("heldout"))
    opened = load_suite("crafter-open")
    assert opened.open_ended and opened.max_steps == 10_000
    smoke = load_suite("smoke")
    assert len(smoke.goals) <= 3 and len(smoke.split("dev")) == 2 and all(s < 100 for s in smoke.split("dev"))
    alone, tries = load_suite("planner-alone"), load_suite("planner-alone-tries")
    assert (tries.goals, tries.seeds) == (alone.goals, alone.seeds)  # only the cost of a mistake differs
    assert tries.rafa_config().attempt_budget == 10 and alone.rafa_config().attempt_budget == 0
    for name in builtin_suites():
        load_suite(name).rafa_config()  # every shipped suite's agent overrides are a valid RafaConfig


def test_valid_suite_parses_phrases_ranges_and_overrides(tmp_path):
    suite = load_suite(write(tmp_path, VALID))
    assert suite.goals == ("collect_wood", "make_wood_pickaxe")
    assert suite.split("heldout") == (100, 101, 102)
    config = suite.rafa_config(lookahead=False)
    assert (config.max_decisions, config.max_env_steps, config.lookahead) == (10, 200, False)


def assert_refused_at(tmp_path, old: str, new: str, line: int, words: list[str]) -> None:
    """VALID with ``old`` edited to ``new`` is refused, the message starting at FILE:LINE and naming ``words``."""
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}:"), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("max_steps: 200", "max_step: 200", 7, ["max_step", "unknown key", "max_steps"]),
    ("  max_decisions: 10", "  max_decision: 10", 9, ["agent.max_decision", "unknown key"]),
    ("  max_decisions: 10", "  max_decisions: lots", 9, ["agent.max_decisions", "int"]),
    ("env: crafter", "env: minecraft", 2, ["env", "minecraft", "crafter"]),
    ("goals: [collect_wood, make a wooden pickaxe]", "goals: [collect_wood, fly to the moon]", 3,
     ["goals", "fly to the moon", "collect_diamond"]),
    ("max_steps: 200", "max_steps: -5", 7, ["max_steps", "positive integer"]),
    ("  heldout: 100-102", "  heldout: 100-abc", 6, ["seeds.heldout", "100-119"]),
    ("  dev: [0, 1]", "  dev: [0, 0]", 5, ["seeds.dev", "repeat"]),
])
def test_mistakes_name_file_line_and_key(tmp_path, old, new, line, words):
    assert_refused_at(tmp_path, old, new, line, words)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, VALID.replace("  heldout: 100-102", "   heldout: [100"))
    with pytest.raises(SuiteError, match=rf"^{path}:\d+:\d+: invalid YAML"):
        load_suite(path)


def test_missing_key_and_unknown_split(tmp_path):
    with pytest.raises(SuiteError, match="missing required key 'seeds'"):
        load_suite(write(tmp_path, "env: crafter\ngoals: open\nmax_steps: 10\n"))
    with pytest.raises(SuiteError, match="no seed split 'test'; splits: dev, heldout"):
        load_suite(write(tmp_path, VALID)).split("test")
    with pytest.raises(SuiteError, match=r"built-in suites: crafter-goals, crafter-open, .*smoke") as error:
        load_suite("no-such-suite")
    assert set(builtin_suites()) <= set(str(error.value).split(": ")[-1].split(", "))


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("  max_decisions: 10", "  vital_thresholds: {food: many}", 9, ["agent.vital_thresholds", "'food'", "int"]),
    ("  max_decisions: 10", "  vital_thresholds: [4, 4]", 9, ["agent.vital_thresholds", "mapping"]),
    ("  max_decisions: 10", "  llm_weight: yes", 9, ["agent.llm_weight", "float", "True"]),
    ("  max_decisions: 10", "  world_model: 3", 9, ["agent.world_model", "str"]),
    ("goals: [collect_wood, make a wooden pickaxe]", "goals: [collect_wood, [place_table]]", 3,
     ["goals", "achievement name or phrase", "['place_table']"]),
    ("goals: [collect_wood, make a wooden pickaxe]", "goals: [collect_wood, {a: 1}]", 3, ["goals", "{'a': 1}"]),
])
def test_nested_and_unhashable_values_are_refused_with_file_line_and_key(tmp_path, old, new, line, words):
    assert_refused_at(tmp_path, old, new, line, words)


def test_good_nested_values_reach_the_agent_config(tmp_path):
    suite = load_suite(write(tmp_path, VALID.replace("  max_decisions: 10",
                                                     "  vital_thresholds: {food: 3}\n  llm_weight: 1")))
    config = suite.rafa_config()
    assert config.vital_thresholds == {"food": 3} and config.llm_weight == 1


def test_type_problem_follows_the_type_hints():
    from typing import Literal

    from evals.suite import type_problem

    assert type_problem(3, int) is None and type_problem(True, int) is not None
    assert type_problem(3, float) is None and type_problem("3", float) is not None
    assert type_problem(None, str | None) is None and type_problem(1, str | None) is not None
    assert type_problem("a", Literal["a", "b"]) is None and "one of" in type_problem("c", Literal["a", "b"])
    assert type_problem([1, 2], tuple[int, ...]) is None and "item 1" in type_problem([1, "x"], list[int])
    assert "'k'" in type_problem({"k": "v"}, dict[str, int])


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    path = write(tmp_path, VALID.replace("goals: [collect_wood, make a wooden pickaxe]", bomb + "goals: *i"))
    with pytest.raises(SuiteError, match=rf"^{path}:\d+:\d+: invalid YAML: YAML aliases \(\*a\) are not allowed"):
        load_suite(path)


def test_an_oversized_suite_file_is_refused_unread(tmp_path):
    from evals.suite import MAX_SUITE_BYTES
    from tools.envs.crafter_goals import MAX_REQUEST_CHARS

    path = write(tmp_path, VALID + "#" * MAX_SUITE_BYTES)
    with pytest.raises(SuiteError, match="a suite file is at most"):
        load_suite(path)
    long_goal = VALID.replace("make a wooden pickaxe", "make " * (MAX_REQUEST_CHARS // 5 + 1))
    with pytest.raises(SuiteError, match=f"at most {MAX_REQUEST_CHARS} characters"):
        load_suite(write(tmp_path, long_goal))
