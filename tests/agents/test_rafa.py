"""The RAFA loop in a real Crafter world: act for now, compare with the prediction, reflect, replan."""

import json

import numpy as np
import pytest

from agents.episode import run_episode
from agents.prior import apply_prior, llm_can_change, llm_prior
from agents.rafa import RafaAgent, RafaConfig
from agents.reflection import compare, reflect
from agents.skill_model import Belief, SkillModel
from agents.steps import ActionStep, Candidate, FinalStep, PlanningStep, StepCallbacks
from agents.strategies import Greedy, Lookahead, OpenLoop, strategy_for
from tools.envs.crafter import MATERIAL_IDS, CrafterEnv
from tools.envs.crafter_goals import GOALS
from tools.skills.crafter import NEAR_RADIUS, SKILLS, run_skill


def finish(agent: RafaAgent, achievement: str) -> tuple[list, FinalStep]:
    steps = list(agent.run(GOALS[achievement]))
    assert isinstance(steps[-1], FinalStep)
    return steps, steps[-1]


def distance_to_nearest_table(env: CrafterEnv) -> float:
    xs, ys = np.nonzero(env.semantic == MATERIAL_IDS["table"])
    px, py = env.player_pos
    return float(np.min(np.maximum(np.abs(xs - px), np.abs(ys - py)))) if len(xs) else np.inf


def test_first_step_only_then_final():
    env = CrafterEnv(seed=3)
    env.reset(seed=3)
    agent = RafaAgent(env, llm=None, config=RafaConfig(max_env_steps=300))
    steps, final = finish(agent, "collect_wood")
    assert final.success, final.reason
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["PlanningStep", "ActionStep"] * (len(steps) // 2) + ["FinalStep"]
    assert steps[0].chosen.first == "collect wood"
    assert agent.memory.of_kind("transition")[0].data["matched"] is True


def test_replans_when_a_remembered_table_is_out_of_reach():
    env = CrafterEnv(seed=1)
    env.reset(seed=1)
    agent = RafaAgent(env, llm=None, config=RafaConfig(max_env_steps=1500))
    assert finish(agent, "place_table")[1].success
    assert "table" in agent.placed
    assert finish(agent, "collect_wood")[1].success  # hold wood, so the pickaxe looks one step away
    for _ in range(8):  # walk away from the table the agent remembers placing
        if distance_to_nearest_table(env) > NEAR_RADIUS + 1:
            break
        run_skill(env, "explore")
    assert distance_to_nearest_table(env) > NEAR_RADIUS + 1

    steps, final = finish(agent, "make_wood_pickaxe")
    actions = [s for s in steps if isinstance(s, ActionStep)]
    tried = [a for a in actions if a.arguments["skill"] in ("make wood_pickaxe", "place table")]
    failed_make = [a for a in actions if a.arguments["skill"] == "make wood_pickaxe" and not a.matched]
    # The model trusted its memory of the table, so either it went for the pickaxe directly (and the
    # contradiction made it replan), or it first gathered wood and then tried: both must end in success.
    assert failed_make, f"expected a contradicted prediction, got {[a.outcome for a in actions]}"
    assert "table" in failed_make[0].reflection and "table" in agent.distrust
    assert any(a.arguments["skill"] == "place table" and a.ok for a in tried[tried.index(failed_make[0]):])
    assert final.success, final.reason
    assert agent.memory.of_kind("reflection")


def test_skills_that_see_only_the_frame_do_not_count_on_a_table_out_of_sight():
    """A learned or frame-only skill cannot walk back to a table it no longer sees: the planner places a new one
    instead of sending ``make`` on the memory (which would spend its whole budget looking)."""
    env = CrafterEnv(seed=1)
    env.reset(seed=1)
    agent = RafaAgent(env, llm=None, config=RafaConfig(max_env_steps=1500, skills="expert-view"))
    assert finish(agent, "place_table")[1].success and "table" in agent.placed
    assert "table" in agent.belief().reachable  # in sight
    for _ in range(8):
        if distance_to_nearest_table(env) > NEAR_RADIUS + 1:
            break
        run_skill(env, "explore")
    assert distance_to_nearest_table(env) > NEAR_RADIUS + 1
    assert "table" not in agent.belief().reachable
    steps, final = finish(agent, "make_wood_pickaxe")
    skills = [s.arguments["skill"] for s in steps if isinstance(s, ActionStep)]
    assert final.success, final.reason
    assert "place table" in skills and skills.index("place table") < skills.index("make wood_pickaxe")
    assert not [s for s in steps if isinstance(s, ActionStep) and not s.ok and s.arguments["skill"] ==
                "make wood_pickaxe"]


def test_budget_ends_the_goal_with_a_reason():
    env = CrafterEnv(seed=0)
    env.reset(seed=0)
    agent = RafaAgent(env, llm=None, config=RafaConfig(max_env_steps=5))
    steps, final = finish(agent, "make_iron_pickaxe")
    assert not final.success
    assert "budget" in final.reason
    assert any(isinstance(s, PlanningStep) for s in steps)


def test_a_contradicted_make_writes_the_table_lesson_word_for_word():
    env = CrafterEnv(seed=1)
    env.reset(seed=1)
    run_skill(env, "collect wood")
    prediction = SkillModel(SKILLS).predict(Belief(inventory={"wood": 1}, reachable=frozenset({"table"})),
                                            "make wood_pickaxe")[0]
    result = run_skill(env, "make wood_pickaxe")  # no table on the map
    matched, actual = compare(prediction, result)
    lesson = reflect("make wood_pickaxe", prediction, result, actual)
    assert not matched and lesson.distrust == "table"
    assert lesson.text == (f"make wood_pickaxe did not go as predicted: expected {prediction.describe()}, but "
                           f"{actual}. A table I placed earlier is not always within reach; only count on a "
                           "table I can see, otherwise place a new one.")
    other = reflect("collect stone", prediction, run_skill(env, "collect stone"), "failed: no pickaxe")
    assert other.distrust == "" and other.text.endswith("Do not repeat collect stone blindly; change something first.")


def test_run_episode_builds_the_world_from_the_factory_and_streams_steps_by_type(tmp_path):
    worlds: list[int] = []

    def short_world(seed: int, config: RafaConfig) -> CrafterEnv:
        worlds.append(seed)
        return CrafterEnv(seed=seed, length=25)

    seen: list[str] = []
    callbacks = StepCallbacks({PlanningStep: lambda s: seen.append("plan"), FinalStep: lambda s: seen.append("end")})
    result = run_episode("make a stone pickaxe", seed=4, out_dir=tmp_path, llm=None, video=False,
                         step_callbacks=callbacks, make_env=short_world)
    logged = [json.loads(line)["type"] for line in (tmp_path / "episode.jsonl").read_text().splitlines()]
    assert worlds == [4] and not result.success and result.summary["env_steps"] <= 25
    assert seen == ["plan"] * logged.count("PlanningStep") + ["end"] and logged.count("ActionStep") >= 1


def test_every_named_agent_gets_its_strategy():
    from evals.agents import AGENTS

    expected = {"greedy": Greedy(sighted=True), "greedy-blind": Greedy(sighted=False), "open-loop": OpenLoop()}
    for name, spec in AGENTS.items():
        if spec.factory is not RafaAgent:
            continue
        strategy = strategy_for(RafaConfig(**spec.switches))
        if name.startswith("rafa"):
            assert isinstance(strategy, Lookahead) and strategy.branches == 8 and strategy.critic.horizon == 3
        else:
            assert strategy == expected[name.replace("-imagine", "").replace("-feedback", "")], name


def test_the_llm_prior_is_asked_only_when_it_could_change_the_choice_and_sums_to_one():
    class FixedScores:
        def score(self, prompt, options):
            return [-1.0, -3.0][: len(options)]

    close = [Candidate(future=["a"], cost_to_go=1, critic=-2.0, value=-2.0),
             Candidate(future=["b"], cost_to_go=1, critic=-2.4, value=-2.4)]
    far = [close[0], Candidate(future=["b"], cost_to_go=3, critic=-3.0, value=-3.0)]
    assert llm_can_change(close, weight=0.5) and not llm_can_change(far, weight=0.5)
    assert not llm_can_change(close[:1], weight=0.5)  # one option: nothing to choose
    logprobs, error = llm_prior(FixedScores(), [], ["a", "b"], retries=0)
    assert error is None and sum(np.exp(logprobs)) == pytest.approx(1.0)
    apply_prior(close, logprobs, weight=0.5)
    assert close[0].value == pytest.approx(-2.0 + 0.5 * np.exp(logprobs[0])) and close[1].llm_logprob == logprobs[1]
    assert llm_prior(FixedScores(), [], ["a", "b", "c"], retries=1) == (
        None, "llm returned invalid scores [-1.0, -3.0] for 3 options")


@pytest.mark.parametrize("field", ["llm_weight", "vital_weight", "max_seconds"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_config_refuses_numbers_that_are_not_finite(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number"):
        RafaConfig(**{field: value})


def test_the_critic_takes_every_weight_from_the_config():
    config = RafaConfig(vital_weight=7.0, threat_weight=0.25, horizon=2)
    critic = strategy_for(config).critic
    assert (critic.vital_weight, critic.threat_weight, critic.horizon) == (7.0, 0.25, 2)
    assert critic.vital_thresholds == config.vital_thresholds and critic.vital_thresholds is not config.vital_thresholds
