"""The built-in tools an agent uses in Crafter: ``act`` (run a skill) and ``look``.

They bind a live env to the Tool contract so the planner only ever sees names,
JSON arguments and :class:`~tools.base.ToolResult` objects.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym

from tools.base import Tool, ToolResult
from tools.skills.crafter import SKILLS, run_skill

#: ``(env, skill, budget=None) -> ToolResult``: the scripted ``run_skill`` or a learned runner
#: (``vla.skills.LearnedSkillRunner``) with the same signature and result data.
SkillRunner = Callable[..., ToolResult]


class ActTool(Tool):
    name = "act"
    description = "Run one skill (e.g. 'collect wood') until it succeeds, fails or runs out of steps."
    inputs = {
        "skill": {"type": "string", "description": "skill name", "enum": sorted(SKILLS)},
        "budget": {"type": "integer", "description": "max env steps (default: the skill's own)", "nullable": True},
    }

    def __init__(self, env: gym.Env, runner: SkillRunner = run_skill) -> None:
        super().__init__()
        self.env = env
        self.runner = runner

    def forward(self, skill: str, budget: int | None = None) -> ToolResult:
        return self.runner(self.env, skill, budget=budget)


class LookTool(Tool):
    name = "look"
    description = "Describe the current state: inventory, vitals, daylight, what is nearby."
    inputs: dict = {}

    def __init__(self, env: gym.Env) -> None:
        super().__init__()
        self.env = env

    def forward(self) -> ToolResult:
        return ToolResult(ok=True, text=self.env.unwrapped.describe())
