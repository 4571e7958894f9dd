"""The agent-driven world-model collector: the critic-only RAFA agent plays the open-ended episode.

``world_models.data`` records the episode and labels each step with the skill that drove it; it may not
import the agent stack (DESIGN §2: ``world_models`` ← ``agents``), so this driver is passed in from
above: ``embodia collect --for world-model --driver agent`` hands :func:`drive_with_agent` to
``world_models.data.collect``.
"""

from __future__ import annotations

import gymnasium

from agents.memory import Memory
from agents.open_ended import OPEN_GOAL, OpenEnded
from agents.rafa import RafaAgent, RafaConfig
from tools.skills.crafter import run_skill
from world_models.data import SKILL_NAMES, CollectConfig, Recorder


def drive_with_agent(rec: Recorder, cfg: CollectConfig) -> None:
    """Run the critic-only RAFA agent over every achievement in turn; each step is labelled with its skill."""

    def labelled(env: gymnasium.Env, skill: str, budget: int | None = None):
        rec.skill = SKILL_NAMES.index(skill)
        try:
            return run_skill(env, skill, budget=budget)
        finally:
            rec.skill = -1

    config = RafaConfig(max_env_steps=cfg.steps, max_decisions=200)
    agent = OpenEnded(RafaAgent, cfg.skill_budget * 4, rec, None, Memory(), config)
    agent.inner.tools["act"].runner = labelled
    for _ in agent.run(OPEN_GOAL):
        pass
