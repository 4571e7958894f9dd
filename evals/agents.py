"""The agents a suite can evaluate, by name, so every number in a report has a comparison.

=============  ===========================================================  ========  =====
name           what it is                                                   uses LLM  †
=============  ===========================================================  ========  =====
random         uniformly random actions                                     no        no
oracle         scripted expert over the skills, knows the dependency tree   no        yes
greedy         ReAct-style: the LLM picks one feasible skill at a time      yes       no
open-loop      plans once with the skill model, never replans               no        no
rafa           the full RAFA loop: model + critic + LLM prior, replanning   yes       no
rafa-imagine   rafa + RIG: imagines each chosen skill in the world model    yes       no
               and revises a step it confidently foresees failing (RIG)
rafa-dream     rafa-imagine + near-tied futures scored in imagination       yes       no
               (the world model as RAFA's transition model)
rafa-llm-led   RAFA's own mode: the LLM proposes futures, predicts each     yes       no
               step (checked by the skill model) and values them
greedy-blind   greedy without the skill model's preconditions: every skill  yes       no
               is an option
greedy-blind-  greedy-blind + RIG on raw imagined success: imagination      yes       no
imagine        stands in for the hand-written preconditions
greedy-blind-  greedy-blind that does not retry a failed skill until some   yes       no
feedback       skill succeeds or an item changes (real feedback)
greedy-blind-  greedy-blind-imagine with the same feedback rule             yes       no
imagine-
feedback
skill          the expert to a state where the goal's skill is feasible,    no        no
               then that one skill via --skills (crafter-skills suite)
=============  ===========================================================  ========  =====

† marks the ``privileged`` reference in reports: the oracle needs no planner, it plans and acts on
the whole map and the full dependency tree itself (an upper bound, not a competitor).

Only ``random`` reads nothing beyond what a player sees (the 9×7 local view). Every planning
agent (rafa, greedy, open-loop and their variants) reads privileged state too:

* its belief (``RafaAgent.belief``) reads inventory, achievements and daylight from the true state,
  and the materials and creatures of a 13×13 window of the true map (``NEAR_RADIUS`` 6 around the
  player), wider than the view;
* with ``--skills expert`` (the default) it acts through scripted skills that read the whole map to
  find their targets and routes (``tools/skills``); ``--skills learned`` acts from pixels instead;
* its skill model and critic know every skill's requirements and effects (crafter's data.yaml).

So the gap between the oracle and these agents measures planning, not perception. ``--perception pixels``
replaces the first point: the belief comes from the frame alone (``agents.perception``, the README's
Perception section), and with ``--skills learned`` too the planner and the policy see only pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from agents.episode import AgentFactory
from agents.open_ended import OpenEnded
from agents.rafa import RafaAgent, RafaConfig
from evals.baselines import OracleAgent, RandomAgent
from evals.skill_attempts import SkillAttempt
from evals.suite import Suite


@dataclass(frozen=True)
class AgentSpec:
    """How to build one kind of agent for a suite.

    ``switches`` are the RafaConfig fields that make this agent what it is (they win over
    suite overrides); ``uses_llm`` False means no planner is loaded whatever ``--llm`` says.
    """

    name: str
    description: str
    factory: AgentFactory
    uses_llm: bool
    privileged: bool = False
    switches: dict[str, Any] = field(default_factory=dict)

    def config(self, suite: Suite) -> RafaConfig:
        return suite.rafa_config(**self.switches)

    def make_agent(self, suite: Suite) -> AgentFactory:
        """The factory ``run_episode`` calls: wrapped to walk every achievement for open-ended suites."""
        if suite.open_ended:
            return functools.partial(OpenEnded, self.factory, suite.steps_per_goal)
        if hasattr(self.factory, "for_suite"):  # an agent that reads the suite (evals.skill_attempts)
            return self.factory.for_suite(suite)
        return self.factory


#: The planner without the skill model's preconditions; imagination's raw estimate (the calibration was fitted on
#: steps those preconditions allowed); and not retrying a failed step until a success or an item change.
_BLIND = {"lookahead": False, "feasibility_model": False}
_IMAGINE_RAW = {"imagination": True, "imagine_calibrated": False}
_FEEDBACK = {"retry_unchanged": False}

AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in (
    AgentSpec("random", "uniformly random actions", RandomAgent, uses_llm=False),
    AgentSpec("oracle", "privileged scripted expert that knows the dependency tree", OracleAgent,
              uses_llm=False, privileged=True),
    AgentSpec("greedy", "ReAct-style: the LLM picks one feasible skill at a time, no lookahead", RafaAgent,
              uses_llm=True, switches={"lookahead": False}),
    AgentSpec("open-loop", "plans once with the skill model and never replans (no LLM calls)", RafaAgent,
              uses_llm=False, switches={"replan": False}),
    AgentSpec("rafa", "RAFA: skill model + critic + LLM prior, replanning on surprises", RafaAgent, uses_llm=True),
    AgentSpec("rafa-imagine", "RAFA + RIG: imagines each chosen skill in the world model first, revises vetoed ones",
              RafaAgent, uses_llm=True, switches={"imagination": True}),
    AgentSpec("rafa-dream", "RAFA + RIG + near-tied futures scored by their imagined success in the world model",
              RafaAgent, uses_llm=True, switches={"imagination": True, "imagine_weight": 0.5}),
    AgentSpec("rafa-llm-led", "RAFA with the LLM as proposer, model and critic; the skill model checks its "
              "predictions, the critic decides only when the LLM fails", RafaAgent, uses_llm=True,
              switches={"planner": "llm-led"}),
    AgentSpec("greedy-blind", "greedy without the skill model's preconditions: the LLM picks among all skills",
              RafaAgent, uses_llm=True, switches=_BLIND),
    AgentSpec("greedy-blind-imagine", "greedy-blind + RIG: a skill imagined to fail (raw estimate) is revised",
              RafaAgent, uses_llm=True, switches=_BLIND | _IMAGINE_RAW),
    AgentSpec("greedy-blind-feedback", "greedy-blind retrying a failed skill only after a success or an item change",
              RafaAgent, uses_llm=True, switches=_BLIND | _FEEDBACK),
    AgentSpec("greedy-blind-imagine-feedback", "greedy-blind-imagine with the same no-retry feedback rule",
              RafaAgent, uses_llm=True, switches=_BLIND | _IMAGINE_RAW | _FEEDBACK),
    AgentSpec("skill", "per-skill suite: the expert curriculum to a state where the goal's skill is feasible, "
              "then that skill once through --skills", SkillAttempt, uses_llm=False),
)}


def get_agent(name: str) -> AgentSpec:
    """The agent called ``name``; an unknown name gets the list of valid ones."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(AGENTS)}")
    return AGENTS[name]


def with_planner(agent: str, planner: str, llm: str | None) -> str:
    """The agent ``--planner`` names: ``llm-led`` turns rafa into rafa-llm-led; other agents have no llm-led form."""
    if planner == "critic-led":
        return agent
    if planner != "llm-led":
        raise ValueError(f"--planner must be critic-led or llm-led, got {planner!r}")
    if agent not in ("rafa", "rafa-llm-led"):
        raise ValueError(f"--planner llm-led applies to --agent rafa only (it is --agent rafa-llm-led), not {agent!r}")
    if llm is None or llm.strip().lower() == "none":
        raise ValueError("--planner llm-led needs a language model: drop --llm none (or use --planner critic-led)")
    return "rafa-llm-led"


def agent_label(name: str, llm: str | None) -> str:
    """How a run is named in reports: the agent, its planner, and a mark for privileged agents."""
    spec = get_agent(name)
    label = name if not spec.uses_llm else f"{name} ({llm or 'no LLM'})"
    return f"{label} †" if spec.privileged else label
