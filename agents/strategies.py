"""How the agent chooses among skills: RAFA's lookahead and the ablations that take a part away.

Every named agent (``evals/agents.py``) is one of three strategies plus two independent rules:

* :class:`Lookahead` (rafa): the critic scores the future chained from each feasible skill; the
  best ``branches`` are shown to the LLM, whose prior settles near-ties.
* :class:`Greedy` (greedy, greedy-blind): no model and no critic; the LLM picks among the feasible
  skills (``sighted``) or among all of them (blind), one at a time, ReAct-style.
* :class:`OpenLoop` (open-loop): plans once with the skill model, then follows that plan to its end.

``RafaConfig(planner="llm-led")`` swaps the lookahead's decider: :class:`agents.llm_led.LlmLed` (a
:class:`Lookahead` whose critic is only the fallback) lets the LLM propose, predict and value futures.

The rules on top: imagination (``RafaConfig.imagination``: rafa-imagine, rafa-dream, …) and the
feedback rule (``retry_unchanged=False``: a failed skill is not retried until something changed).
``strategy_for`` reads the (backward-compatible) ``RafaConfig`` switches in this one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.critic import Critic
from agents.skill_model import Belief, SkillModel
from agents.steps import Candidate

if TYPE_CHECKING:
    from agents.rafa import RafaConfig


@dataclass(frozen=True)
class Lookahead:
    """RAFA proper: critic-scored futures; the LLM sees the best ``branches``."""

    critic: Critic
    branches: int
    name: str = "lookahead"

    def options(self, model: SkillModel, belief: Belief, achievement: str, recent_failures: list[str | None],
                excluded: Iterable[str]) -> list[Candidate]:
        candidates = self.critic.candidates(model, belief, achievement, recent_failures, excluded)
        return sorted(candidates, key=lambda c: -c.critic)[: self.branches]


@dataclass(frozen=True)
class Greedy:
    """Every skill the model deems feasible (``sighted``; blind: every skill) is an equal option."""

    sighted: bool = True
    name: str = "greedy"

    def options(self, model: SkillModel, belief: Belief, achievement: str, recent_failures: list[str | None],
                excluded: Iterable[str]) -> list[Candidate]:
        excluded = set(excluded)
        return [Candidate(future=[name], cost_to_go=math.inf, critic=0.0, value=0.0) for name in model.skills
                if name not in excluded and (not self.sighted or model.check(belief, name)[0])]


@dataclass
class OpenLoop:
    """Plans once from the first belief of a goal, then hands out its steps in order, never revising them."""

    plan: list[str] | None = field(default=None)
    name: str = "open-loop"

    def reset(self) -> None:
        """Forget the plan: the next goal is planned afresh."""
        self.plan = None

    def next_future(self, model: SkillModel, belief: Belief, achievement: str) -> list[str]:
        """The rest of the fixed plan, its first step taken off for the next call ([]: exhausted)."""
        if self.plan is None:
            self.plan = model.plan(belief, achievement) or []
        future = list(self.plan)
        if self.plan:
            self.plan.pop(0)
        return future


Strategy = Lookahead | Greedy | OpenLoop


def strategy_for(config: RafaConfig) -> Strategy:
    """The strategy ``config``'s switches name (``replan``, then ``lookahead`` and ``feasibility_model``)."""
    if not config.replan:
        return OpenLoop()
    if not config.lookahead:
        return Greedy(sighted=config.feasibility_model)
    if config.planner == "llm-led":
        from agents.llm_led import LlmLed  # it builds on Lookahead: imported here, not at the top

        return LlmLed(critic=Critic.from_config(config), branches=config.branches, futures=config.llm_futures,
                      depth=config.llm_depth)
    return Lookahead(critic=Critic.from_config(config), branches=config.branches)
