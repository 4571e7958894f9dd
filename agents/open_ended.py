"""The open-ended Crafter episode for goal-driven agents: pursue every achievement in turn, in one world.

Crafter's leaderboard scores an agent by which achievements it unlocks in an episode of up to
10,000 steps. Our agents take one goal at a time, so :class:`OpenEnded` hands them the 22
achievements in :data:`ORDER` (the dependency order the oracle follows: tools before what
needs them, slow or dangerous goals last), skipping any already unlocked, each with at most
``steps_per_goal`` env steps, pass after pass while a pass unlocks something new, until the
episode ends. Every achievement unlocked on the way counts, whichever goal was being pursued.

It drives an agent, so it lives with the agents: the ``crafter-open`` suite (``evals``) and the
world model's agent-driven data collection (:mod:`agents.collect`) both use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import gymnasium as gym

from agents.episode import AgentFactory
from agents.llm.base import LLM
from agents.memory import Memory
from agents.rafa import RafaConfig
from agents.steps import FinalStep, Step
from tools.envs.crafter import ACHIEVEMENTS
from tools.envs.crafter_goals import GOALS, Goal

ORDER: tuple[str, ...] = (
    "collect_wood", "place_table", "make_wood_pickaxe", "make_wood_sword", "collect_sapling", "place_plant",
    "collect_drink", "eat_cow", "collect_stone", "place_stone", "make_stone_pickaxe", "make_stone_sword",
    "collect_coal", "place_furnace", "defeat_zombie", "wake_up", "collect_iron", "make_iron_pickaxe",
    "make_iron_sword", "collect_diamond", "eat_plant", "defeat_skeleton",
)
assert sorted(ORDER) == sorted(ACHIEVEMENTS), "the open-ended order must cover every achievement once"

#: The objective recorded for open-ended episodes (no single achievement: success is unlocking all 22).
OPEN_GOAL = Goal("open", "unlock as many achievements as possible before the episode ends")


class OpenEnded:
    """Runs an inner agent over :data:`ORDER` in one world; its steps stream through unchanged."""

    def __init__(self, make_inner: AgentFactory, steps_per_goal: int, env: gym.Env, llm: LLM | None,
                 memory: Memory, config: RafaConfig) -> None:
        self.env, self.memory, self.length = env, memory, config.max_env_steps
        self.inner = make_inner(env, llm, memory, dataclasses.replace(config, max_env_steps=steps_per_goal))

    def _world(self) -> gym.Env:
        """The env the open-ended protocol scores (which goal is next, whether the episode is over): the real one
        even in pixel mode, where the agent pursuing each goal sees only the frame (``tools.envs.pixels``)."""
        return getattr(self.env, "skill_env", self.env).unwrapped

    def run(self, goal: Goal) -> Iterator[Step]:
        world = self._world()
        env_steps = decisions = 0
        progress = True
        while progress and not self._over():  # another pass over the goals still missing, while it pays
            before = sum(v > 0 for v in world.achievements.values())
            for achievement in ORDER:
                if self._over():
                    break
                if world.achievements[achievement] > 0:
                    continue
                for step in self.inner.run(GOALS[achievement]):
                    if isinstance(step, FinalStep):
                        env_steps += step.env_steps
                        decisions += step.decisions
                    yield step
            progress = sum(v > 0 for v in world.achievements.values()) > before
        unlocked = sum(v > 0 for v in world.achievements.values())
        ended = "the agent died" if world.player.health <= 0 else (
            "the episode reached its step limit" if world.steps >= self.length else "no goal left within reach")
        yield FinalStep(goal.phrase, unlocked == len(ACHIEVEMENTS),
                        f"{unlocked}/{len(ACHIEVEMENTS)} achievements unlocked; {ended}", env_steps, decisions)

    def _over(self) -> bool:
        world = self._world()
        return world.player.health <= 0 or world.steps >= self.length
