"""RIG-style self-correction in the loop: imagine the chosen skill first, revise it when imagination vetoes it.

The shipped tiny world model is weak (see world_models/README.md), so this tests the mechanism in a
real world with the real checkpoint — a veto is recorded and acted on, and the goal still ends —
not that every veto is right; the with/without comparison lives in the benchmarks.
"""

import pytest

from agents.imagination import ObservationHistory
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import FinalStep, PlanningStep
from agents.strategies import Greedy
from tools.envs.crafter import CrafterEnv
from tools.envs.crafter_goals import GOALS


def test_imagination_revises_a_vetoed_step_and_records_why(one_torch_thread):
    env = ObservationHistory(CrafterEnv(seed=1))
    env.reset(seed=1)
    config = RafaConfig(imagination=True, max_decisions=8, max_env_steps=300)
    agent = RafaAgent(env, llm=None, config=config)
    assert "imagine" in agent.tools
    # The raw estimates: calibrated ones (the default) almost never veto, since imagination's confident
    # failures proved mostly wrong on dev seeds (world_models/README.md); this tests the veto mechanism.
    agent.imagination.calibration = None
    steps = list(agent.run(GOALS["make_wood_pickaxe"]))
    revised = [s for s in steps if isinstance(s, PlanningStep) and "revised" in s.thought]
    assert revised, "expected imagination to veto at least one choice"
    vetoed = revised[0].thought.split("revised '")[1].split("'")[0]
    assert revised[0].chosen.first != vetoed
    notes = [r for r in agent.memory.of_kind("note") if r.data.get("imagined")]
    assert notes and 0.0 <= notes[0].data["imagined"]["success_prob"] <= config.imagine_veto
    assert isinstance(steps[-1], FinalStep)


def test_near_tied_futures_are_scored_in_imagination_and_clear_choices_are_not(one_torch_thread):
    env = ObservationHistory(CrafterEnv(seed=1))
    env.reset(seed=1)
    config = RafaConfig(imagination=True, imagine_weight=0.5, max_decisions=4, max_env_steps=300)
    agent = RafaAgent(env, llm=None, config=config)
    plans = [s for s in agent.run(GOALS["make_stone_pickaxe"]) if isinstance(s, PlanningStep)]
    scored = [p for p in plans if any(c.imagined_success is not None for c in p.candidates)]
    assert scored, "collecting wood and placing a table tie on the way to a stone pickaxe: expected them imagined"
    for plan in plans:
        best = max(c.critic for c in plan.candidates)
        for candidate in plan.candidates:
            if candidate.imagined_success is None:
                assert candidate.value == candidate.critic
            else:  # only contenders are imagined, and their share enters the value with the configured weight
                assert best - candidate.critic <= config.imagine_weight
                assert 0.0 <= candidate.imagined_success <= 1.0
                assert candidate.value == candidate.critic + config.imagine_weight * candidate.imagined_success
        assert plan.chosen is max(plan.candidates, key=lambda c: c.value)


def test_the_blind_greedy_planner_sees_every_skill_and_needs_no_lookahead():
    env = ObservationHistory(CrafterEnv(seed=1))
    env.reset(seed=1)
    goal = GOALS["make_wood_pickaxe"]
    sighted = RafaAgent(env, llm=None, config=RafaConfig(lookahead=False))
    blind = RafaAgent(env, llm=None, config=RafaConfig(lookahead=False, feasibility_model=False))
    assert (sighted.strategy, blind.strategy) == (Greedy(sighted=True), Greedy(sighted=False))
    seen = {c.first for c in sighted.options(goal, sighted.belief())}
    options = {c.first for c in blind.options(goal, blind.belief())}
    assert "make wood_pickaxe" in options - seen  # no wood yet: only the skill model knew it cannot run
    assert seen < options and len(options) == len(blind.model.skills)
    with pytest.raises(ValueError, match="needs lookahead=False"):
        RafaConfig(feasibility_model=False)


@pytest.mark.parametrize("attempt_budget", [0, 5])
def test_without_retries_a_step_that_failed_is_not_offered_again_until_an_item_changes(attempt_budget):
    """World 1, empty inventory: stone and a pickaxe fail (at once, or after a real try); wood changes things."""
    goal = GOALS["collect_stone"]
    for retry in (True, False):
        env = CrafterEnv(seed=1)
        env.reset(seed=1)
        agent = RafaAgent(env, llm=None, config=RafaConfig(lookahead=False, feasibility_model=False,
                                                          retry_unchanged=retry, attempt_budget=attempt_budget))

        def options() -> set[str]:
            return {c.first for c in agent.options(goal, agent.belief())}  # noqa: B023

        tried = agent._act(goal, 1, "collect stone", 100)  # no pickaxe: bare-handed digging does nothing
        assert not tried.ok
        assert (0 < tried.env_steps <= attempt_budget) if attempt_budget else tried.env_steps == 0
        assert env.inventory["stone"] == 0
        assert not agent._act(goal, 1, "make wood_pickaxe", 100).ok  # no wood, no table in sight
        assert options() & {"collect stone", "make wood_pickaxe"} == ({"collect stone", "make wood_pickaxe"}
                                                                      if retry else set())
        assert agent._act(goal, 2, "collect wood", 100).ok  # an item changed: worth another try
        assert {"collect stone", "make wood_pickaxe"} <= options()
    with pytest.raises(ValueError, match="attempt_budget"):
        RafaConfig(skills="learned", attempt_budget=5)
