"""RIG-style self-correction in the loop: imagine the chosen skill first, revise it when imagination vetoes it.

The shipped tiny world model is weak (see world_models/README.md), so this tests the mechanism in a
real world with the real checkpoint — a veto is recorded and acted on, and the goal still ends —
not that every veto is right; the with/without comparison lives in the benchmarks.
"""


from agents.imagination import ObservationHistory
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import FinalStep, PlanningStep
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
