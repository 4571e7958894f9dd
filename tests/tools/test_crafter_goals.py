"""Goal matching: user phrases map to achievements; nonsense maps to nothing."""

import pytest

from tools.envs.crafter import ACHIEVEMENTS
from tools.envs.crafter_goals import GOALS, match_goal


@pytest.mark.parametrize(
    ("text", "achievement"),
    [
        ("make a wooden pickaxe", "make_wood_pickaxe"),
        ("get some stone", "collect_stone"),
        ("make a stone pickaxe", "make_stone_pickaxe"),
        ("collect diamonds", "collect_diamond"),
        ("place a crafting table", "place_table"),
        ("kill a zombie", "defeat_zombie"),
        ("drink water", "collect_drink"),
        ("sleep", "wake_up"),
        ("Craft me an iron pick-axe!", "make_iron_pickaxe"),
    ],
)
def test_match_known_goals(text, achievement):
    match = match_goal(text)
    assert match.goal is not None and match.goal.achievement == achievement
    assert match.confidence >= 0.72


def test_reject_unknown_goal_with_candidates():
    match = match_goal("fly to the moon")
    assert match.goal is None and match.candidates and match.confidence < 0.72


def test_all_achievements_have_goals_and_counts_decide():
    assert set(GOALS) == set(ACHIEVEMENTS)
    goal = GOALS["collect_wood"]
    assert not goal.is_achieved({"collect_wood": 2}, {"achievements": {"collect_wood": 2}})
    assert goal.is_achieved({"collect_wood": 2}, {"collect_wood": 3})
