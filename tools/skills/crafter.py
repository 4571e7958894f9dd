"""Scripted expert skills for Crafter: the agent's hands (DESIGN §4, ``act``).

``run_skill`` runs a skill's scripted body (``tools.skills.bodies``), ``run_policy_skill`` drives
the same harness (``tools.skills.harness``) with a learned policy's actions, and both return the
same result record. What each skill needs and gives is the table in ``tools.skills.specs``,
re-exported here because the planner, collectors and evals read it next to the runners.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np

from tools.base import ToolResult
from tools.envs.crafter import ACTION_NAMES
from tools.skills.bodies import body_of
from tools.skills.harness import HEALTH_CRITICAL, SkillRun, Stop
from tools.skills.specs import (
    EXPLORE_NEW_TILES,
    NEAR_RADIUS,
    SKILLS,
    SkillSpec,
    items_text,
    normalise_skill_name,
)

__all__ = ["EXPLORE_NEW_TILES", "HEALTH_CRITICAL", "NEAR_RADIUS", "SKILLS", "SkillSpec", "expert_action",
           "normalise_skill_name", "run_policy_skill", "run_skill"]


def run_skill(
    env: gymnasium.Env, name: str, budget: int | None = None, attempt_budget: int | None = None, sight: str = "map"
) -> ToolResult:
    """Run the scripted skill ``name`` on ``env`` until it succeeds, fails, or ``budget`` steps pass.

    A skill whose requirements are missing fails at once without a step: the runner's own hand-written
    check. With ``attempt_budget`` the script is tried anyway for at most that many steps (placing a table
    with one wood, mining stone bare-handed), as a robot without the check would: the world model's
    training data learns what a failed attempt looks like, and a blind planner pays for one in env steps.
    ``sight="view"`` lets the script read only the tiles in the player's frame (``tools.skills.harness.SkillRun``).
    """
    return _execute(env, name, budget, lambda run: body_of(run.spec)(run), attempt_budget, sight)


def run_policy_skill(
    env: gymnasium.Env, name: str, choose: Callable[[dict[str, np.ndarray]], int], budget: int | None = None,
    stop_on_new_threat: bool = False,
) -> ToolResult:
    """Run skill ``name`` with each action from ``choose(obs)`` (e.g. a learned policy) instead of the script.

    The stop rules, failure reasons and result data are the expert's, so the two are interchangeable.
    ``stop_on_new_threat`` adds one rule: a zombie arriving next to the player ends the run
    (``tools.skills.harness.SkillRun``).
    """

    def drive(run: SkillRun) -> None:
        obs = run.game.observe()
        while True:
            run.act(ACTION_NAMES[choose(obs)])
            obs = run.obs

    return _execute(env, name, budget, drive, stop_on_new_threat=stop_on_new_threat)


class _Chosen(Exception):
    """The first action a skill body asks for: raised instead of stepping the env."""

    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


class _Probe(SkillRun):
    """A run whose first ``act`` ends it without stepping: the body's choice in the current state."""

    def act(self, action: str) -> None:
        raise _Chosen(action)


def expert_action(env: gymnasium.Env, name: str, sight: str = "map") -> int | None:
    """The scripted expert's next action index for skill ``name`` in ``env``'s *current* state, or None when
    the expert would stop there (nothing reachable, requirements missing, energy full...).

    The bodies re-plan from the privileged state at every step, so starting one afresh and taking its first
    action labels any state, including ones only a learner reaches (DAgger). Nothing is stepped or changed.
    Bodies that keep memory across steps (explore's tiles seen at the start, sleep's shelter) re-plan from
    the current state instead, an approximation for those skills. With ``sight="view"`` the label depends on the
    frame's tiles only, so a memoryless pixel policy can match it everywhere (no imitation gap).
    """
    spec = SKILLS.get(normalise_skill_name(name))
    if spec is None:
        raise ValueError(f"unknown skill {name!r}; known skills: {', '.join(sorted(SKILLS))}")
    probe = _Probe(env, spec, budget=1, sight=sight)
    if spec.missing(probe.start_inventory):
        return None
    try:
        body_of(spec)(probe)
    except _Chosen as chosen:
        return ACTION_NAMES.index(chosen.action)
    except Stop:
        return None
    return None


def _execute(
    env: gymnasium.Env, name: str, budget: int | None, body: Callable[[SkillRun], None],
    attempt_budget: int | None = None, sight: str = "map", stop_on_new_threat: bool = False,
) -> ToolResult:
    spec = SKILLS.get(normalise_skill_name(name))
    if spec is None:
        message = f"unknown skill {name!r}; known skills: {', '.join(sorted(SKILLS))}"
        return ToolResult(ok=False, text=message, error=message, data={"skill": name, "reason": message})
    run = SkillRun(env, spec, spec.budget if budget is None else budget, sight=sight,
                   stop_on_new_threat=stop_on_new_threat)
    missing = spec.missing(run.start_inventory)
    try:
        if missing and attempt_budget is None:
            have = ", ".join(f"{run.start_inventory.get(k, 0)} {k}" for k in missing)
            raise Stop(False, f"need {items_text(spec.requires)} to {spec.name} (have {have})")
        if missing:
            run.budget = min(run.budget, attempt_budget)
        body(run)
        raise Stop(False, f"{spec.name} stopped without success")
    except Stop as stop:
        ok, reason = stop.ok, stop.reason
    inventory = run.game.inventory
    delta = {k: inventory[k] - run.start_inventory[k] for k in inventory if inventory[k] != run.start_inventory[k]}
    ach = run.game.achievements
    unlocked = [k for k in ach if ach[k] > run.start_achievements[k]]
    data = {
        "skill": spec.name,
        "steps": run.steps,
        "inventory_delta": delta,
        "achievements_unlocked": unlocked,
        "terminated": run.terminated,
        "truncated": run.truncated,
    }
    if spec.verb == "sleep":
        data["sheltered"] = run.sheltered
    if ok:
        text = f"{spec.name}: done in {run.steps} steps" + (f"; unlocked {', '.join(unlocked)}" if unlocked else "")
        return ToolResult(ok=True, text=text, observation=run.observation, data=data)
    data["reason"] = reason
    if run.missing_near is not None:
        data["missing_near"] = run.missing_near
    return ToolResult(
        ok=False, text=f"{spec.name} failed: {reason}", observation=run.observation, data=data, error=reason
    )
