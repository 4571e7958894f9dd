"""The two reference agents without a planner: uniform random actions, and the privileged scripted oracle.

They speak the same ``run(goal) -> Iterator[Step]`` protocol as :class:`~agents.rafa.RafaAgent`,
so :func:`agents.episode.run_episode` records and scores them exactly like the LLM agents.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym

from agents.llm.base import LLM
from agents.memory import Memory
from agents.rafa import RafaConfig
from agents.steps import ActionStep, FinalStep, Step
from evals.expert_skills import Oracle
from tools.envs.crafter import ACTION_NAMES
from tools.envs.crafter_goals import Goal
from tools.skills.crafter import SKILLS

#: The skill that unlocks each achievement, for the oracle.
SKILL_FOR = {spec.achievement: name for name, spec in SKILLS.items() if spec.achievement}


class _Baseline:
    """Shared episode bookkeeping: the start point, the end test and the final step."""

    def __init__(self, env: gym.Env, llm: LLM | None, memory: Memory, config: RafaConfig) -> None:
        self.env, self.memory, self.config = env, memory, config
        self.world = env.unwrapped

    def _start(self, goal: Goal) -> tuple[dict[str, int], int]:
        return dict(self.world.achievements), self.world.steps

    def _ended(self, start_steps: int) -> str | None:
        """Why the episode cannot go on (death, step budget), or None."""
        if self.world.player.health <= 0:
            return "the agent died"
        if self.world.steps - start_steps >= self.config.max_env_steps:
            return f"env-step budget of {self.config.max_env_steps} used up"
        return None

    def _final(self, goal: Goal, start: dict[str, int], start_steps: int, decisions: int) -> FinalStep:
        success = goal.is_achieved(start, self.world.achievements)
        reason = f"{goal.achievement} unlocked" if success else (self._ended(start_steps) or "gave up")
        return FinalStep(goal.phrase, success, reason, self.world.steps - start_steps, decisions)


class RandomAgent(_Baseline):
    """Uniformly random actions until the goal unlocks or the episode ends: the floor every number beats.

    Actions come from the env's own generator, which ``reset(seed=...)`` seeds, so a seed
    fixes the whole episode.
    """

    def run(self, goal: Goal) -> Iterator[Step]:
        start, start_steps = self._start(goal)
        rng, index = self.world.np_random, 0
        while not goal.is_achieved(start, self.world.achievements) and self._ended(start_steps) is None:
            action = int(rng.integers(len(ACTION_NAMES)))
            before = self.world.achievements
            self.env.step(action)
            unlocked = [k for k, v in self.world.achievements.items() if v > before[k]]
            index += 1
            yield ActionStep(index=index, tool="step", arguments={"action": ACTION_NAMES[action]}, predicted="",
                             ok=True, outcome="", matched=True, env_steps=1, achievements=unlocked)
        yield self._final(goal, start, start_steps, index)


class OracleAgent(_Baseline):
    """The scripted expert that knows the dependency tree and reads the whole map: an upper bound.

    Privileged: it sees state no learned or LLM agent is given, so reports mark it.
    """

    def run(self, goal: Goal) -> Iterator[Step]:
        start, start_steps = self._start(goal)
        oracle = Oracle(self.env, start_steps + self.config.max_env_steps)
        skill = SKILL_FOR[goal.achievement]
        while not goal.is_achieved(start, self.world.achievements) and not oracle.over():
            calls, steps, before = oracle.calls, self.world.steps, self.world.achievements
            oracle.achieve(skill)
            unlocked = [k for k, v in self.world.achievements.items() if v > before[k]]
            yield ActionStep(index=oracle.calls, tool="oracle", arguments={"skill": skill}, predicted="", ok=True,
                             outcome=f"{oracle.calls - calls} skill calls", matched=True,
                             env_steps=self.world.steps - steps, achievements=unlocked)
            if self.world.steps == steps:  # stuck without acting: more tries would change nothing
                break
        yield self._final(goal, start, start_steps, oracle.calls)
