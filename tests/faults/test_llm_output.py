"""Malformed and adversarial LLM output, a thousand times: the planner and goal resolution never crash.

The planner never executes model text: it only *scores* enumerated options (SayCan-style), so an
off-menu answer or an unknown tool cannot be expressed at all. What a backend can still get wrong is the
list of scores (wrong length, NaN, inf, strings, None, huge lists) or the call itself (it raises). The
backend below is the LLM, the dependency; the code under test is the real planner loop in a real env.
"""

from __future__ import annotations

import math
import random

import pytest

from agents.goals import resolve_goal
from agents.llm.base import LLM, LLMUsage
from agents.prior import llm_prior, valid_scores
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import ActionStep, FinalStep, PlanningStep
from tools.envs.crafter import CrafterEnv
from tools.envs.crafter_goals import GOALS


def adversarial_scores(rng: random.Random, n: int) -> object:
    """One malformed answer to ``score`` for ``n`` options (or an exception to raise)."""
    kind = rng.randrange(9)
    if kind == 0:
        return [rng.uniform(-50, 0) for _ in range(rng.choice([0, 1, n - 1, n + 1, 10 * n + 3]))]  # wrong length
    if kind == 1:
        return [rng.choice([math.nan, math.inf, -math.inf, 0.0]) for _ in range(n)]
    if kind == 2:
        return [bytes(rng.randrange(256) for _ in range(8)).decode("latin-1") for _ in range(n)]  # random bytes
    if kind == 3:
        return None
    if kind == 4:
        return '{"choice": "rm -rf /", "tool": "shell"}'  # wrong JSON, an unknown tool
    if kind == 5:
        return RuntimeError("backend died: " + "x" * 100_000)  # a huge error message
    if kind == 6:
        return [rng.uniform(-50, 0) for _ in range(n)]  # well-formed: must be used, normalised
    if kind == 7:
        return [1e308] * n  # finite but absurd
    return [[0.0]] * n  # nested, not numbers


class AdversarialLLM(LLM):
    """A backend whose every answer is drawn from :func:`adversarial_scores`."""

    name = "test:adversarial"

    def __init__(self, seed: int, *, malformed_only: bool = False) -> None:
        self.usage = LLMUsage()
        self.rng = random.Random(seed)
        self.malformed_only = malformed_only
        self.calls = 0

    def generate(self, messages, *, max_tokens=128, stop=None, schema=None) -> str:
        return bytes(self.rng.randrange(256) for _ in range(4096)).decode("latin-1")

    def score(self, prompt, options):
        self.calls += 1
        while True:
            answer = adversarial_scores(self.rng, len(options))
            if not (self.malformed_only and valid_scores(answer, len(options))):
                break
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_thousand_malformed_scores_never_escape_the_prior():
    llm = AdversarialLLM(seed=0)
    options = ["collect wood", "place table", "make wood pickaxe", "sleep"]
    used = refused = 0
    for _ in range(1000):
        logprobs, error = llm_prior(llm, [{"role": "user", "content": "choose"}], options, retries=0)
        if logprobs is None:
            refused += 1
            assert error and len(error) < 200_000
        else:
            used += 1
            assert len(logprobs) == len(options) and all(math.isfinite(v) for v in logprobs)
            assert math.isclose(sum(math.exp(v) for v in logprobs), 1.0, rel_tol=1e-9)
    assert used > 50 and refused > 500  # both paths were exercised


def test_a_thousand_malformed_answers_never_break_goal_resolution():
    llm = AdversarialLLM(seed=1)
    for i in range(1000):
        resolution = resolve_goal(f"do the thing number {i} with the shiny blue rock", llm)
        assert resolution.goal is None and resolution.message  # not a goal: refused with words, never a crash


@pytest.mark.parametrize("seed", [0, 1])
def test_the_critic_decides_alone_when_every_answer_is_malformed(seed):
    """Same world, same goal: a model that only answers garbage changes nothing the critic decided."""
    runs = []
    for llm in (None, AdversarialLLM(seed, malformed_only=True)):
        env = CrafterEnv(seed=seed)
        env.reset(seed=seed)
        config = RafaConfig(llm_weight=5.0, llm_retries=1)  # a weight that makes the LLM worth asking every time
        steps = list(RafaAgent(env, llm, config=config).run(GOALS["make_wood_pickaxe"]))
        runs.append((steps, llm))
    (plain, _), (attacked, llm) = runs
    assert isinstance(attacked[-1], FinalStep) and attacked[-1].success
    skills = [[s.arguments["skill"] for s in steps if isinstance(s, ActionStep)] for steps in (plain, attacked)]
    assert skills[0] == skills[1]
    consulted = [s for s in attacked if isinstance(s, PlanningStep) and s.llm_ms > 0]
    assert consulted and all(s.error for s in consulted) and llm.calls == 2 * len(consulted)
