"""The per-skill suite's agent (``embodia eval crafter-skills --agent skill``): one skill attempted from a state
where it is feasible.

Learned and scripted skills must be compared on the same situations, and a skill can only be judged where it
can succeed (a pickaxe is made with wood in hand next to a table). So each episode drives the scripted expert
through the collection curriculum (``tools.collect_crafter.CHAIN`` via ``feasible_chain``, as the demonstrations
were collected and as DAgger rolls out) on the suite's world until the goal's skill is next and its items are
held, makes sure the expert can act on it there (``tools.skills.crafter.expert_action`` is not None; else
the expert places the station out of reach, collecting its cost, or explores: at most ``FEASIBILITY_TRIES``
calls), then hands over to the skill under test (``--skills expert|learned|NAME|DIR``, via
``agents.rafa.make_skill_runner``) for one call.
Success is that call's own subgoal test (``ToolResult.ok``: the skill's achievement or item gain) within
``min(skill budget, suite steps_per_goal)`` env steps. The expert and its world are deterministic, so every
``--skills`` run of a seed hands over in the identical state; the summary's ``env_steps`` are the attempt's.
A world where the skill never becomes feasible (the expert died first, say) is a failed episode saying so.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import gymnasium as gym

from agents.llm.base import LLM
from agents.memory import Memory
from agents.rafa import RafaConfig, make_skill_runner
from agents.steps import ActionStep, FinalStep, Step
from evals.baselines import SKILL_FOR
from tools.collect_crafter import feasible_chain
from tools.envs.crafter_goals import Goal
from tools.skills.crafter import SKILLS, expert_action, run_skill

#: Expert calls (placing the missing station, else exploring) to make a skill the expert can act on at its turn.
FEASIBILITY_TRIES = 4
#: The collect skill that gives each item (what a station out of reach needs to be placed anew).
GIVER = {item: spec.name for spec in SKILLS.values() if spec.verb == "collect" for item in spec.gives}


class SkillAttempt:
    """Expert prefix to the goal's skill, then that one skill through ``config.skills``."""

    def __init__(self, env: gym.Env, llm: LLM | None, memory: Memory, config: RafaConfig,
                 budget: int | None = None) -> None:
        self.env, self.memory, self.config, self.budget = env, memory, config, budget
        self.world = env.unwrapped
        self.runner = make_skill_runner(config.skills)

    @classmethod
    def for_suite(cls, suite: Any) -> functools.partial[SkillAttempt]:
        """The factory ``run_episode`` calls, with the suite's ``steps_per_goal`` as the attempt's step cap."""
        return functools.partial(cls, budget=suite.steps_per_goal)

    def _call(self, runner: Any, index: int, tool: str, skill: str, budget: int) -> tuple[ActionStep, Any]:
        steps, before = self.world.steps, dict(self.world.achievements)
        result = runner(self.env, skill, budget=max(1, budget))
        unlocked = [k for k, v in self.world.achievements.items() if v > before[k]]
        return ActionStep(index=index, tool=tool, arguments={"skill": skill}, predicted="", ok=result.ok,
                          outcome=result.text, matched=True, env_steps=self.world.steps - steps,
                          achievements=unlocked, error=result.error, data=dict(result.data)), result

    def run(self, goal: Goal) -> Iterator[Step]:
        skill = SKILL_FOR.get(goal.achievement)
        if skill is None:
            yield FinalStep(goal.phrase, False, f"no skill unlocks {goal.achievement}", 0, 0)
            return
        index, deadline = 0, self.world.steps + self.config.max_env_steps
        for name in feasible_chain(self.world):
            if name == skill:
                break
            index += 1
            budget = min(SKILLS[name].budget, deadline - self.world.steps)
            if budget <= 0:
                break
            step, _ = self._call(run_skill, index, "expert", name, budget)
            yield step
        else:
            why = "the expert died" if self.world.player.health <= 0 else "the curriculum ended"
            yield FinalStep(goal.phrase, False, f"{skill} never became feasible: {why} first", 0, index)
            return
        for _ in range(FEASIBILITY_TRIES):  # the inventory suffices; does the expert see something to do?
            if self.world.steps >= deadline or expert_action(self.world, skill) is not None:
                break
            near = run_skill(copy.deepcopy(self.world), skill, budget=1).data.get("missing_near")
            fix = f"place {near}" if near else "explore"
            lacking = next(iter(SKILLS[fix].missing(self.world.inventory)), None)  # wood for a new table
            fix = GIVER.get(lacking, fix) if lacking else fix
            index += 1
            step, _ = self._call(run_skill, index, "expert", fix, deadline - self.world.steps)
            yield step
        else:
            yield FinalStep(goal.phrase, False, f"{skill} never became feasible: the expert finds nothing to "
                                                f"{skill} after {FEASIBILITY_TRIES} tries", 0, index)
            return
        if self.world.steps >= deadline:
            yield FinalStep(goal.phrase, False, f"env-step budget of {self.config.max_env_steps} used up before "
                                                f"{skill}'s turn", 0, index)
            return
        cap = min(SKILLS[skill].budget, self.budget or SKILLS[skill].budget, deadline - self.world.steps)
        step, result = self._call(self.runner, index + 1, "act", skill, cap)
        step.data["handover_env_step"] = self.world.steps - step.env_steps
        yield step
        yield FinalStep(goal.phrase, result.ok, result.text, step.env_steps, index + 1)
