"""The shipped checkpoint drives the agent's ``act`` tool: a learned skill completes in a fresh world."""

import pytest

from tools.crafter_tools import ActTool
from tools.envs.crafter import CrafterEnv
from vla.skills import LearnedSkillRunner


@pytest.fixture(scope="module")
def runner():
    return LearnedSkillRunner.from_pretrained()


def test_learned_collect_wood_through_the_act_tool(runner):
    env = CrafterEnv(seed=1002)  # a held-out world (the dataset used seeds 0-92)
    env.reset(seed=1002)
    result = ActTool(env, runner=runner).forward("collect wood", budget=50)
    assert result.ok, result.text
    assert result.data["inventory_delta"] == {"wood": 1} and result.data["achievements_unlocked"] == ["collect_wood"]


def test_learned_runner_reports_failures_like_the_expert(runner):
    env = CrafterEnv(seed=1002)
    env.reset(seed=1002)
    result = runner(env, "place table")  # no wood yet
    assert not result.ok and result.data["reason"] == "need 2 wood to place table (have 0 wood)"
