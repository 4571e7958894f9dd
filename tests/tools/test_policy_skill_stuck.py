"""A policy driving a skill (``run_policy_skill``) is stopped when it presses one action that changes nothing,
and only then: walking and working actions run on."""

from tools.envs.crafter import ACTION_NAMES, CrafterEnv
from tools.skills.crafter import STUCK_REPEATS, run_policy_skill


def fresh() -> CrafterEnv:
    env = CrafterEnv(seed=0)
    env.reset(seed=0)
    return env


def test_a_policy_repeating_a_useless_action_is_stopped():
    make = ACTION_NAMES.index("make_wood_pickaxe")  # no table, no wood: nothing happens
    result = run_policy_skill(fresh(), "collect wood", lambda obs: make, budget=300)
    assert not result.ok
    assert result.data["steps"] == STUCK_REPEATS
    assert result.data["reason"].startswith(f"no progress: the policy pressed make_wood_pickaxe {STUCK_REPEATS} times")


def test_walking_and_alternating_actions_are_not_stuck():
    walk = ACTION_NAMES.index("move_left")
    result = run_policy_skill(fresh(), "collect wood", lambda obs: walk, budget=40)
    assert "no progress" not in result.data.get("reason", "")
    assert result.data["steps"] > STUCK_REPEATS
    actions = iter([ACTION_NAMES.index(a) for a in ("do", "noop")] * 30)
    result = run_policy_skill(fresh(), "collect wood", lambda obs: next(actions), budget=40)
    assert "no progress" not in result.data.get("reason", "")
