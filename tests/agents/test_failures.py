"""Bad things happen: an env that crashes, a model that answers off-schema. The agent records, never crashes."""

import gymnasium as gym

from agents.llm.base import LLM, LLMUsage
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import ActionStep, FinalStep, PlanningStep
from tools.envs.crafter import CrafterEnv
from tools.envs.crafter_goals import GOALS


class CrashAfter(gym.Wrapper):
    """A real Crafter env whose simulator dies after ``n`` steps (as a segfaulting sim would)."""

    def __init__(self, env: gym.Env, n: int) -> None:
        super().__init__(env)
        self.left = n

    def step(self, action):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("simulator crashed")
        return self.env.step(action)


class OffSchemaLLM(LLM):
    """A backend that returns the wrong number of scores, then NaNs: malformed output."""

    name = "test:off-schema"

    def __init__(self) -> None:
        self.usage = LLMUsage()
        self.answers = 0

    def generate(self, messages, *, max_tokens=128, stop=None, schema=None) -> str:
        return "not json"

    def score(self, prompt, options):
        self.answers += 1
        return [0.0] if self.answers % 2 else [float("nan")] * len(options)


def test_env_crash_ends_the_goal_as_failed_with_the_error():
    env = CrashAfter(CrafterEnv(seed=0), n=3)
    env.reset(seed=0)
    steps = list(RafaAgent(env, llm=None).run(GOALS["make_wood_pickaxe"]))
    final = steps[-1]
    assert isinstance(final, FinalStep) and not final.success
    assert final.reason.startswith("env error") and "simulator crashed" in final.error


def test_malformed_llm_output_is_retried_then_the_critic_decides():
    env = CrafterEnv(seed=2)
    env.reset(seed=2)
    llm = OffSchemaLLM()
    config = RafaConfig(llm_retries=1, llm_weight=5.0)  # a weight that makes the LLM worth asking every time
    steps = list(RafaAgent(env, llm, config=config).run(GOALS["place_table"]))
    consulted = [s for s in steps if isinstance(s, PlanningStep) and s.llm_ms > 0]
    assert consulted and all("invalid scores" in s.error for s in consulted)
    assert llm.answers == 2 * len(consulted)  # one retry per decision
    assert isinstance(steps[-1], FinalStep) and steps[-1].success
    assert any(isinstance(s, ActionStep) and s.arguments["skill"] == "place table" for s in steps)
