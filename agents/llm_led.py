"""RAFA with the LLM as model and critic: the paper's mode (Liu et al., 2023), ``RafaConfig(planner="llm-led")``.

The critic-led default (``agents.rafa``) lets the hand-written skill model and critic decide and the LLM
only break near-ties. Here the LLM decides, each step constrained to what the skill model knows:

1. *propose* — the LLM scores every feasible skill as the next step (the planner prompt, the one the
   shipped adapter was tuned on); the ``futures`` best start B candidate futures, and each is extended
   to ``depth`` skills by scoring every skill name (``llm_led.jinja``, task ``propose``);
2. *model* — the LLM predicts each step's outcome, choosing between "it works: <the skill's declared
   effect>" and "it fails" (task ``predict``); the skill model checks the prediction: success where
   the skill's requirements are not met under the imagined belief is impossible, so it is corrected
   to a failure and the correction recorded on the candidate;
3. *critic* — the LLM values each future by log P("yes") to "will this plan reach the goal?" (task
   ``value``), and the future with the best log P(proposed) + log P(yes) is chosen;
4. *act for now, replan* — only its first step runs; ``agents.rafa`` compares the outcome with the
   skill model's prediction, reflects on a contradiction and plans again from the new state.

Every option is a skill name or an outcome the code wrote, so the LLM cannot invent a call, and any
backend with ``score`` works (a choice-only backend's 0/-20 votes are valid scores). A failed or
malformed LLM answer is retried, then the critic decides that step alone, with the error recorded,
exactly as in the critic-led planner.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from agents.llm.base import LLM
from agents.prior import llm_prior
from agents.skill_model import Belief, SkillModel
from agents.steps import Candidate
from agents.strategies import Lookahead
from prompts import render_messages
from prompts import version as prompt_version

WORKS, FAILS = "it works", "it fails"
PLANNERS = ("critic-led", "llm-led")


class LLMFailed(RuntimeError):
    """An LLM call of the decision failed after its retries; the critic decides instead."""


@dataclass(kw_only=True)
class ImaginedFuture(Candidate):
    """A candidate future the LLM proposed, with each step's predicted outcome as the skill model checked it.

    ``llm_logprob`` is the log-probability of proposing the whole future, ``llm_value`` log P("yes, it
    reaches the goal"), ``value`` their sum (what decides); ``critic`` and ``cost_to_go`` are the
    hand-written critic's view of the same first step (-inf/inf: it sees no plan from it), for comparison.
    """

    llm_value: float = 0.0
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # per step: predicted, possible, corrected


@dataclass(frozen=True)
class LlmLed(Lookahead):
    """The LLM proposes, predicts and values futures; the critic (inherited) is the fallback and the comparison."""

    futures: int = 3
    depth: int = 2
    name: str = "llm-led"


@dataclass
class Decision:
    """What one LLM-led decision produced; ``agents.rafa`` turns it into the ``PlanningStep``."""

    candidates: list[Candidate]
    chosen: Candidate | None
    thought: str
    prompt: list[dict[str, str]] | None
    llm_ms: float
    error: str | None = None
    prompt_version: str = ""


@dataclass
class _Asker:
    """One decision's LLM calls: the shared prompt variables, retries, and the time spent."""

    llm: LLM
    retries: int
    variables: dict[str, Any]
    ms: float = 0.0

    def ask(self, task: str, options: list[str], plan: list[dict[str, str]], messages: list | None = None,
            **extra: Any) -> list[float]:
        """Normalised log-probabilities of ``options`` for ``task``; raises :class:`LLMFailed` after the retries."""
        if messages is None:
            messages = render_messages("llm_led", task=task, options=options, plan=plan, **self.variables, **extra)
        started = time.perf_counter()
        logprobs, error = llm_prior(self.llm, messages, options, self.retries)
        self.ms += (time.perf_counter() - started) * 1000
        if logprobs is None:
            raise LLMFailed(f"{task}: {error}")
        return logprobs


def _as_if_possible(belief: Belief, model: SkillModel, name: str) -> Belief:
    """``belief`` with ``name``'s requirements met, so the model can state what the skill would do."""
    spec = model.skills[name]
    inventory = dict(belief.inventory)
    for item, amount in spec.requires.items():
        inventory[item] = max(inventory.get(item, 0), amount)
    return replace(belief, inventory=inventory, reachable=belief.reachable | frozenset(spec.near),
                   threats=frozenset())


def outcome_options(model: SkillModel, belief: Belief, name: str) -> list[str]:
    """The two outcomes the LLM chooses between: the skill's declared effect, or failure."""
    declared, _ = model.predict(_as_if_possible(belief, model, name), name)
    return [f"{WORKS}: {declared.describe()}", f"{FAILS}: nothing changes"]


def check_outcome(model: SkillModel, belief: Belief, name: str, predicted: str) -> tuple[dict[str, Any], Belief]:
    """The skill model's check of the LLM's predicted outcome: the record and the belief after the step.

    A predicted success the model deems impossible (requirements unmet under ``belief``) is corrected to
    a failure; a predicted failure always stands (the world can make any skill fail).
    """
    possible, reason = model.check(belief, name)
    works = predicted.startswith(WORKS)
    record = {"skill": name, "predicted": predicted, "possible": possible, "corrected": works and not possible}
    if works and possible:
        record["outcome"] = predicted
        return record, model.predict(belief, name)[1]
    record["outcome"] = f"{FAILS}: {reason}" if works else predicted
    return record, belief


def decide(strategy: LlmLed, llm: LLM | None, model: SkillModel, belief: Belief, achievement: str,
           variables: dict[str, Any], planner_prompt: Any, fallback: list[Candidate], feasible: list[str],
           retries: int) -> Decision:
    """One LLM-led decision over ``feasible`` first steps; the critic's ``fallback`` ranking if the LLM fails.

    ``variables`` are the prompt's goal, state, reflections and recent steps; ``planner_prompt(options)``
    renders the planner prompt the first step is proposed with.
    """
    if llm is None:
        return _critic_decides(fallback, "", "llm-led: no LLM (none loaded, or its call budget is used up); "
                               "the critic decided")
    asker = _Asker(llm, retries, variables)
    first_prompt = planner_prompt(feasible)
    try:
        futures = _imagine(strategy, asker, model, belief, achievement, feasible, first_prompt, fallback)
    except LLMFailed as exc:
        return _critic_decides(fallback, "", f"llm-led: {exc}; the critic decided", asker.ms, first_prompt)
    ranked = sorted(futures, key=lambda c: -c.value)
    chosen = ranked[0]
    corrected = sum(o["corrected"] for c in futures for o in c.outcomes)
    note = f"; {corrected} impossible prediction{'s' * (corrected != 1)} corrected" if corrected else ""
    steps = " → ".join(f"{o['skill']} ({o['outcome']})" for o in chosen.outcomes)
    thought = (f"{variables['goal']}: LLM-led, {len(futures)} imagined futures{note}; best {steps}, "
               f"P(reaches goal) {math.exp(chosen.llm_value):.2f}; doing {chosen.first!r} now")
    return Decision(candidates=ranked, chosen=chosen, thought=thought, prompt=first_prompt, llm_ms=asker.ms,
                    prompt_version=prompt_version("llm_led"))


def _imagine(strategy: LlmLed, asker: _Asker, model: SkillModel, belief: Belief, achievement: str,
             feasible: list[str], first_prompt: list[dict[str, str]],
             fallback: list[Candidate]) -> list[ImaginedFuture]:
    """Propose, predict and value ``strategy.futures`` futures (every LLM call through ``asker``)."""
    first_logprobs = asker.ask("propose", feasible, [], messages=first_prompt)
    starts = sorted(zip(feasible, first_logprobs, strict=True), key=lambda p: -p[1])[: strategy.futures]
    critic_view = {c.first: c for c in fallback}
    skills = list(model.skills)
    futures = []
    for first, logprob in starts:
        future, outcomes, state = [first], [], belief
        while True:
            name = future[-1]
            options = outcome_options(model, state, name)
            predicted = options[_best(asker.ask("predict", options, outcomes, skill=name))]
            record, state = check_outcome(model, state, name, predicted)
            outcomes.append(record)
            if len(future) >= strategy.depth or state.achievements.get(achievement, 0) > belief.achievements.get(
                    achievement, 0):
                break
            proposal = asker.ask("propose", skills, outcomes)
            future.append(skills[_best(proposal)])
            logprob += max(proposal)
        yes = asker.ask("value", ["yes", "no"], outcomes)[0]
        critic = critic_view.get(first)
        futures.append(ImaginedFuture(future=future, cost_to_go=critic.cost_to_go if critic else math.inf,
                                      critic=critic.critic if critic else -math.inf, llm_logprob=logprob,
                                      llm_value=yes, value=logprob + yes, outcomes=outcomes))
    return futures


def _best(logprobs: list[float]) -> int:
    return max(range(len(logprobs)), key=logprobs.__getitem__)


def _critic_decides(fallback: list[Candidate], thought: str, error: str, llm_ms: float = 0.0,
                    prompt: list[dict[str, str]] | None = None) -> Decision:
    """The critic-led choice (its best future), used when the LLM cannot or may not decide."""
    ranked = sorted(fallback, key=lambda c: -c.value)
    chosen = ranked[0] if ranked else None
    if chosen is not None:
        thought = thought or f"plan {' → '.join(chosen.future)}; doing {chosen.first!r} now (critic)"
    return Decision(candidates=ranked, chosen=chosen, thought=thought or "nothing feasible", prompt=prompt,
                    llm_ms=llm_ms, error=error, prompt_version=prompt_version("planner") if prompt else "")
