"""Metrics against values computed by hand (and against published Wilson intervals)."""

import math

import pytest

from evals.metrics import crafter_score, summarise, wilson_interval
from tools.envs.crafter import ACHIEVEMENTS


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (5, 10, 0.2366, 0.7634),   # p = 0.5: symmetric around 0.5
    (0, 10, 0.0, 0.2775),      # no success still leaves an upper bound well above 0
    (10, 10, 0.7225, 1.0),
    (1, 1, 0.2065, 1.0),
])
def test_wilson_interval(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("n", range(1, 60))
def test_wilson_interval_contains_an_all_or_nothing_rate(n):
    """Rounding once put the bound of 10/10 a hair below 1.0, and the report's error bar below zero."""
    assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0


def test_wilson_interval_without_data_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_crafter_score_on_known_rates():
    assert crafter_score(dict.fromkeys(ACHIEVEMENTS, 100.0)) == pytest.approx(100.0)
    assert crafter_score(dict.fromkeys(ACHIEVEMENTS, 0.0)) == pytest.approx(0.0)
    half = {a: 100.0 if i % 2 else 0.0 for i, a in enumerate(ACHIEVEMENTS)}
    assert crafter_score(half) == pytest.approx(math.sqrt(101) - 1)  # exp(0.5 ln 101) - 1 = 9.0499
    assert crafter_score({"collect_wood": 100.0}) == pytest.approx(101 ** (1 / 22) - 1)  # missing count as 0
    assert crafter_score(dict.fromkeys(ACHIEVEMENTS, 10.0)) == pytest.approx(10.0)


def _record(goal, success, steps, calls=0, tokens=(0, 0), wall=1.0, achievements=(), status="ok"):
    return {"goal": goal, "success": success, "env_steps": steps, "llm_calls": calls, "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1], "wall_seconds": wall, "achievements": list(achievements),
            "status": status}


def test_summarise_goal_suite_by_hand():
    records = [_record("collect_wood", True, 10, 2, (100, 4), 2.0),
               _record("collect_wood", False, 30, 4, (200, 8), 4.0),
               _record("place_table", True, 20), _record("place_table", True, 40, status="ok"),
               _record("place_table", False, 0, status="error")]
    m = summarise(records, ["collect_wood", "place_table"])
    wood, table = m.goals
    assert (wood.episodes, wood.successes, wood.success_rate) == (2, 1, 0.5)
    assert (wood.mean_env_steps, wood.mean_llm_calls, wood.mean_tokens, wood.mean_wall_seconds) == (20, 3, 156, 3)
    assert (table.episodes, table.successes, table.errors) == (3, 2, 1)
    assert table.success_rate == pytest.approx(2 / 3) and table.mean_env_steps == 20
    assert (m.overall.episodes, m.overall.successes, m.overall.errors) == (5, 3, 1)
    assert m.achievement_rates == {"collect_wood": 50.0, "place_table": pytest.approx(200 / 3)}
    assert m.crafter_score is None and m.score_basis == "goal-conditioned"  # not all 22 goals: no score


def test_summarise_all_goals_gives_goal_conditioned_score():
    records = [_record(a, i < 11, 5) for i, a in enumerate(ACHIEVEMENTS)]
    m = summarise(records, list(ACHIEVEMENTS))
    assert m.crafter_score == pytest.approx(math.sqrt(101) - 1)


def test_summarise_open_suite_uses_share_of_episodes_per_achievement():
    records = [_record("open", False, 300, achievements=["collect_wood", "place_table"]),
               _record("open", False, 200, achievements=["collect_wood"]),
               _record("open", False, 100, achievements=[]),
               _record("open", False, 100, achievements=["collect_wood", "collect_sapling"])]
    m = summarise(records, ["open"])
    assert m.score_basis == "open-ended"
    assert m.achievement_rates["collect_wood"] == 75.0 and m.achievement_rates["place_table"] == 25.0
    assert m.achievement_rates["collect_diamond"] == 0.0 and len(m.achievement_rates) == 22
    expected = math.exp((math.log(76) + 2 * math.log(26)) / 22) - 1
    assert m.crafter_score == pytest.approx(expected)
    assert m.goals[0].mean_env_steps == 175
