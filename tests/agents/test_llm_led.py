"""The llm-led planner (RAFA with the LLM as model and critic) in a real Crafter world.

The episode test drives a real, randomly initialised transformers Llama through the real backend, so
the LLM's choices are arbitrary: whatever it says, only valid skill calls may run. The correction and
fallback tests use backends that answer in one fixed way (a too-optimistic one, a broken one, one
returning garbage) — faults injected at the LLM interface, not stand-ins for the planner under test.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from agents.llm.base import LLM, LLMUsage
from agents.llm_led import ImaginedFuture, LlmLed, check_outcome, decide, outcome_options
from agents.rafa import RafaAgent, RafaConfig
from agents.skill_model import Belief, SkillModel
from agents.steps import ActionStep, FinalStep, PlanningStep
from agents.strategies import Lookahead, strategy_for
from evals.agents import with_planner
from tools.envs.crafter import CrafterEnv
from tools.envs.crafter_goals import GOALS
from tools.skills.crafter import SKILLS

VITALS_FULL = {"health": 9, "food": 9, "drink": 9, "energy": 9}
MODEL = SkillModel(SKILLS)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, embedded_model_dir) -> LLM:
    """A real 2-layer Llama with random weights and SmolLM2's tokenizer and chat template, on one thread."""
    from agents.llm.transformers_backend import TransformersLLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=4096))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return TransformersLLM(folder, name="tiny-llama", num_threads=1)


class Scripted(LLM):
    """A backend whose every answer follows one rule: it scores option ``i`` as ``rule(option)``."""

    def __init__(self, rule) -> None:
        self.name, self.usage, self.rule = "scripted", LLMUsage(), rule

    def generate(self, messages, **kwargs) -> str:
        raise NotImplementedError("the llm-led planner only scores")

    def score(self, prompt, options):
        with self._track():
            return [self.rule(option) for option in options]


def optimist(option: str) -> float:
    """Always predicts success and always wants a wooden pickaxe, ready or not."""
    return {"make wood_pickaxe": 0.0, "collect wood": -1.0, "yes": 0.0}.get(option, -0.5 if "works" in option else -9.0)


def run_goal(agent: RafaAgent, achievement: str) -> list:
    steps = list(agent.run(GOALS[achievement]))
    assert isinstance(steps[-1], FinalStep)
    return steps


def test_a_real_tiny_llama_leads_a_real_episode_and_only_valid_skill_calls_run(tiny_llama):
    env = CrafterEnv(seed=3)
    env.reset(seed=3)
    agent = RafaAgent(env, tiny_llama, config=RafaConfig(planner="llm-led", max_decisions=4, max_env_steps=400))
    assert isinstance(agent.strategy, LlmLed)
    steps = run_goal(agent, "collect_wood")
    plans = [s for s in steps if isinstance(s, PlanningStep)]
    acts = [s for s in steps if isinstance(s, ActionStep)]
    assert plans and len(acts) == len(plans)
    for plan, act in zip(plans, acts, strict=True):
        assert plan.error is None and isinstance(plan.chosen, ImaginedFuture), plan.error
        assert act.arguments["skill"] == plan.chosen.first and act.arguments["skill"] in SKILLS
        assert plan.chosen.outcomes[0]["possible"]  # the first step is one the skill model deems feasible
        assert len(plan.candidates) == 3 and all(set(c.future) <= set(SKILLS) for c in plan.candidates)
        assert all(len(c.outcomes) == len(c.future) for c in plan.candidates)
        assert plan.chosen.value == max(c.value for c in plan.candidates)
        assert plan.llm_ms > 0 and plan.prompt_version and plan.prompt[-1]["role"] == "user"
        record = json.loads(json.dumps(plan.to_record()))  # the episode log keeps every LLM decision
        assert {"llm_value", "outcomes", "llm_logprob"} <= set(record["chosen"])
    assert tiny_llama.usage.calls >= 7 * len(plans)  # per decision: propose, then per future predict (+ extend), value


def test_the_skill_model_corrects_an_impossible_prediction():
    bare = Belief(inventory=VITALS_FULL, reachable=frozenset({"grass", "tree"}))
    works, fails = outcome_options(MODEL, bare, "make wood_pickaxe")
    assert works == "it works: +1 wood_pickaxe, achievement make_wood_pickaxe" and fails.startswith("it fails")
    record, after = check_outcome(MODEL, bare, "make wood_pickaxe", works)
    assert record["corrected"] and not record["possible"] and after == bare
    assert record["outcome"] == "it fails: need 1 wood, have 0"
    record, after = check_outcome(MODEL, bare, "collect wood", outcome_options(MODEL, bare, "collect wood")[0])
    assert not record["corrected"] and after.count("wood") == 1
    record, after = check_outcome(MODEL, bare, "collect wood", "it fails: nothing changes")
    assert not record["corrected"] and record["outcome"] == "it fails: nothing changes" and after == bare


def test_an_optimistic_llm_is_corrected_inside_a_decision_and_the_correction_is_logged():
    bare = Belief(inventory=VITALS_FULL, reachable=frozenset({"grass", "tree"}))
    strategy = strategy_for(RafaConfig(planner="llm-led", llm_futures=2, llm_depth=2))
    fallback = strategy.options(MODEL, bare, "make_wood_pickaxe", [], ())
    feasible = [s for s in MODEL.skills if MODEL.check(bare, s)[0]]
    variables = {"goal": "make a wood pickaxe", "state": "grass and a tree nearby", "reflections": [], "recent": []}
    decision = decide(strategy, Scripted(optimist), MODEL, bare, "make_wood_pickaxe", variables,
                      lambda options: [{"role": "user", "content": "next? " + "; ".join(options)}], fallback,
                      feasible, retries=0)
    assert decision.error is None and decision.chosen.future == ["collect wood", "make wood_pickaxe"]
    first, second = decision.chosen.outcomes
    assert not first["corrected"] and first["outcome"].startswith("it works: +1 wood")
    assert second["corrected"] and second["outcome"] == "it fails: no table within reach"
    assert "impossible prediction" in decision.thought and "corrected" in decision.thought
    assert decision.chosen.critic == max(c.critic for c in fallback)  # the critic's view, kept for comparison


class BrokenLLM(Scripted):
    def score(self, prompt, options):
        raise RuntimeError("CUDA out of memory")


@pytest.mark.parametrize(("llm", "error"), [
    (BrokenLLM(optimist), "llm score failed: RuntimeError: CUDA out of memory"),
    (Scripted(lambda option: math.nan), "llm returned invalid scores"),
])
def test_malformed_output_falls_back_to_the_critic_as_the_critic_led_planner_does(llm, error):
    env = CrafterEnv(seed=3)
    env.reset(seed=3)
    agent = RafaAgent(env, llm, config=RafaConfig(planner="llm-led", max_env_steps=600))
    steps = run_goal(agent, "place_table")
    assert steps[-1].success, steps[-1].reason
    plans = [s for s in steps if isinstance(s, PlanningStep)]
    for plan in plans:
        assert plan.error.startswith("llm-led: propose: ") and error in plan.error
        assert plan.chosen == max(plan.candidates, key=lambda c: c.value)
        assert not isinstance(plan.chosen, ImaginedFuture) and plan.llm_ms > 0


def test_without_llm_the_llm_led_agent_makes_the_critic_led_choices():
    runs = []
    for planner in ("critic-led", "llm-led"):
        env = CrafterEnv(seed=3)
        env.reset(seed=3)
        steps = run_goal(RafaAgent(env, None, config=RafaConfig(planner=planner, max_env_steps=600)), "place_table")
        runs.append([s.arguments["skill"] for s in steps if isinstance(s, ActionStep)])
    assert runs[0] == runs[1] and runs[0][-1] == "place table"


def test_the_planner_option_is_checked():
    assert isinstance(strategy_for(RafaConfig(planner="llm-led")), Lookahead)
    assert type(strategy_for(RafaConfig())) is Lookahead
    with pytest.raises(ValueError, match="planner must be 'critic-led' or 'llm-led'"):
        RafaConfig(planner="llm")
    with pytest.raises(ValueError, match="planner must be"):
        RafaConfig(planner="llm-led", lookahead=False)
    assert with_planner("rafa", "llm-led", "transformers:smollm2") == "rafa-llm-led"
    assert with_planner("greedy", "critic-led", None) == "greedy"
    for agent, llm in (("greedy", "transformers:smollm2"), ("rafa", "none")):
        with pytest.raises(ValueError, match="--planner llm-led"):
            with_planner(agent, "llm-led", llm)


def test_the_llm_led_prompts_share_the_planner_prompts_prefix_so_the_cache_covers_it():
    from prompts import render_messages

    context = {"goal": "collect wood", "state": "Inventory: empty.", "reflections": ["a lesson"], "recent": ["x: ok"]}
    planner = render_messages("planner", options=["collect wood"], **context)
    shared = planner[1]["content"].split("Skills you can use now")[0]
    for task in ("propose", "predict", "value"):
        messages = render_messages("llm_led", task=task, options=["sleep"], skill="sleep",
                                   plan=[{"skill": "collect wood", "outcome": "it works: +1 wood"}], **context)
        assert messages[0] == planner[0] and messages[1]["content"].startswith(shared)
        assert "1. collect wood (it works: +1 wood)" in messages[1]["content"]
