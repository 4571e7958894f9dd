"""Imagination for the planner: roll skills forward in the learned world model before acting.

RIG-style self-correction (DESIGN §5) asks "what will happen if I run this skill now?" before the
real step is taken; RAFA's transition model asks the same for whole candidate futures. Both are
answered here by branching ``samples`` imagined rollouts from the real observation history and
driving each with the world model's skill-conditioned action prior (behaviour cloned from the
scripted experts), so no simulator copy is consulted. A skill counts as succeeded in a rollout
once the predicted count of its achievement rises by at least one half (or, for skills without
an achievement, once what it ``gives`` shows up in the predicted inventory). That raw share is
a poor estimate of real success (world_models/README.md), so :meth:`Imagination.check` maps it
through the checkpoint's calibration, fitted on the agent's own imagined-vs-real step records.

World model: DreamerV3 RSSM (arXiv:2301.04104); RAFA (arXiv:2309.17382).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.calibration import Calibration
from tools.base import Tool, ToolResult
from tools.envs.crafter import ACHIEVEMENTS, ITEM_NAMES, VITALS
from tools.skills.crafter import SKILLS, normalise_skill_name
from world_models import SHIPPED_CHECKPOINT
from world_models.config import RSSMConfig
from world_models.env import WorldModelEnv
from world_models.rssm import RSSMWorldModel, load_world_model

#: The world model shipped with the repository (see its README for how it was trained).
DEFAULT_CHECKPOINT = SHIPPED_CHECKPOINT
_N_ITEMS = len(ITEM_NAMES)
_HEALTH = ITEM_NAMES.index("health")


def _clip(state: torch.Tensor) -> torch.Tensor:
    """Predicted states clipped to what Crafter can show: counts in [0, 9] (the rest untouched)."""
    counts = len(ITEM_NAMES) + len(ACHIEVEMENTS)
    return torch.cat([state[..., :counts].clamp(0, 9), state[..., counts:]], -1)


def _changes(names: tuple[str, ...], delta: torch.Tensor) -> dict[str, float]:
    """Mean predicted changes of at least half a unit, by name."""
    return {n: round(float(v), 1) for n, v in zip(names, delta, strict=True) if abs(float(v)) >= 0.5}


class ObservationHistory(gym.Wrapper):
    """Keeps the last ``length`` observations and the actions between them, for imagination to start from."""

    def __init__(self, env: gym.Env, length: int = 16) -> None:
        super().__init__(env)
        self.observations: deque[dict[str, np.ndarray]] = deque(maxlen=length)
        self.actions: deque[int] = deque(maxlen=length)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.observations.clear()
        self.actions.clear()
        self.observations.append(obs)
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(int(action))
        self.observations.append(obs)
        return obs, reward, terminated, truncated, info

    def history(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(observations stacked (T, ...), the T - 1 actions between them)."""
        if not self.observations:
            raise RuntimeError("ObservationHistory is empty: reset the env through the wrapper first")
        frames = list(self.observations)
        actions = list(self.actions)[len(self.actions) - (len(frames) - 1):] if len(frames) > 1 else []
        return ({"image": np.stack([f["image"] for f in frames]), "state": np.stack([f["state"] for f in frames])},
                np.asarray(actions, np.int64))


def find_history(env: gym.Env) -> ObservationHistory:
    """The :class:`ObservationHistory` wrapper in ``env``'s wrapper chain."""
    current: Any = env
    while current is not None:
        if isinstance(current, ObservationHistory):
            return current
        current = getattr(current, "env", None)
    raise ValueError("imagination needs the real observation history: wrap the env in "
                     "agents.imagination.ObservationHistory before the agent steps it")


@dataclass
class ImaginedOutcome:
    """What imagination predicts for a skill (or a sequence of skills) started now.

    Args:
        plan: the skills, in order.
        success_prob: the success estimate: from :meth:`Imagination.check` with a calibrated checkpoint, the
            real success rate of steps given such a raw estimate (``agents/calibration.py``); else the raw one.
        predicted_inventory_delta: mean predicted change of each inventory item (|change| >= 0.5 only).
        danger: mean predicted fall in health below its current value.
        frames: one rollout's predicted frames (T, H, W, 3) uint8.
        per_skill: success probability of each step of the plan.
        steps: mean imagined env steps until the plan succeeded (or the horizon ran out).
        predicted_achievement_delta: mean predicted change of each achievement count (|change| >= 0.5 only).
        health_change: mean predicted health at the end of the rollout minus health now.
        raw_success_prob: share of imagined rollouts in which every skill succeeded.
    """

    plan: list[str]
    success_prob: float
    predicted_inventory_delta: dict[str, float]
    danger: float
    frames: np.ndarray
    per_skill: list[float] = field(default_factory=list)
    steps: float = 0.0
    predicted_achievement_delta: dict[str, float] = field(default_factory=dict)
    health_change: float = 0.0
    raw_success_prob: float = 0.0

    def describe(self) -> str:
        gains = ", ".join(f"{v:+.1f} {k}" for k, v in self.predicted_inventory_delta.items()) or "no inventory change"
        raw = f" (raw {self.raw_success_prob:.0%})" if round(self.raw_success_prob, 2) != round(self.success_prob, 2) \
            else ""
        return (f"imagined {' → '.join(self.plan)}: success {self.success_prob:.0%}{raw} in ~{self.steps:.0f} steps, "
                f"{gains}, health drop {self.danger:.1f}")

    def to_record(self) -> dict[str, Any]:
        return {"plan": self.plan, "success_prob": round(self.success_prob, 3),
                "raw_success_prob": round(self.raw_success_prob, 3), "per_skill": self.per_skill,
                "predicted_inventory_delta": self.predicted_inventory_delta,
                "predicted_achievement_delta": self.predicted_achievement_delta, "danger": round(self.danger, 2),
                "health_change": round(self.health_change, 2), "steps": round(self.steps, 1)}


def imagined_vs_real(imagined: dict[str, Any], ok: bool, inventory_delta: dict[str, int],
                     achievements: list[str]) -> dict[str, Any]:
    """One executed step's imagined outcome (``ImaginedOutcome.to_record``) next to what really happened.

    ``agreed`` is whether imagination's call (success when ``success_prob`` >= 0.5) matched the real
    outcome: the per-step number behind the run's imagination summary.
    """
    return {
        "predicted_success": imagined["success_prob"], "raw_success": imagined["raw_success_prob"],
        "real_success": bool(ok),
        "agreed": (imagined["success_prob"] >= 0.5) == bool(ok),
        "predicted_inventory_delta": imagined["predicted_inventory_delta"],
        "real_inventory_delta": {k: int(v) for k, v in inventory_delta.items() if k != "health" and v},
        "predicted_achievement_delta": imagined["predicted_achievement_delta"],
        "real_achievements": sorted(achievements),
        "predicted_health_change": imagined["health_change"],
        "real_health_change": int(inventory_delta.get("health", 0)),
    }


def imagination_summary(comparisons: list[dict[str, Any]], vetoes: int) -> dict[str, Any]:
    """How often imagination's success call agreed with reality over a run, and its Brier score."""
    n = len(comparisons)
    return {
        "imagined_steps": n,
        "success_agreement": round(sum(c["agreed"] for c in comparisons) / n, 3) if n else None,
        "brier": round(sum((c["predicted_success"] - c["real_success"]) ** 2 for c in comparisons) / n, 3)
        if n else None,
        "vetoes": vetoes,
    }


class Imagination:
    """Predict skill outcomes in the world model from the real observation history.

    Args:
        model: a world model, or the path of a checkpoint folder (default: the shipped tiny model).
        samples: imagined rollouts per question (their share of successes is the probability).
        horizon: imagined steps allowed per skill (default: the model's training sequence length).
        seed: seeds the rollouts, so the same situation gets the same answer.
        temperature: of the cloned action prior; below 1 the imagined skill acts more like the expert.
        calibrate: map raw estimates in :meth:`check` through the ``calibration.json`` stored beside a
            checkpoint given by path, when it has one (a model object brings none).
    """

    def __init__(self, model: RSSMWorldModel | str | Path = DEFAULT_CHECKPOINT, samples: int = 64,
                 horizon: int | None = None, seed: int = 0, temperature: float = 0.5,
                 calibrate: bool = True) -> None:
        # Crafter's observation and action shapes (the config defaults): a checkpoint of another world is refused
        crafter = RSSMConfig()
        self.model = model if isinstance(model, RSSMWorldModel) else load_world_model(model, expect=crafter)
        if mismatch := self.model.config.mismatch(crafter):
            raise ValueError(f"this world model was trained for a different world than Crafter: "
                             f"{'; '.join(mismatch)} (model vs Crafter)")
        self.calibration: Calibration | None = (
            Calibration.load(model) if calibrate and not isinstance(model, RSSMWorldModel) else None)
        if not self.model.config.skills:
            raise ValueError("this world model has no skill-conditioned action prior; train it on skill-labelled data")
        self.samples, self.temperature = samples, temperature
        self.horizon = horizon or self.model.config.seq_len
        self.imagined = WorldModelEnv(self.model, seed=seed, render=False)
        self.last: ImaginedOutcome | None = None  # the latest outcome, for a display (the web UI's imagined frame)

    def check(self, env: gym.Env, skill: str, subgoal_achievement: str | None = None) -> ImaginedOutcome:
        """Imagine running ``skill`` now; success means ``subgoal_achievement`` (default: the skill's own) unlocks.

        The estimate is calibrated here only: the calibration was fitted on steps the agent was about to
        take (feasible by its skill model), which is what ``check`` is asked about; a free-form plan from
        :meth:`imagine` may be infeasible, where only the raw estimate means anything.
        """
        outcome = self.imagine(env, [skill], [subgoal_achievement])
        if self.calibration is not None:
            outcome.success_prob = self.calibration(skill, outcome.raw_success_prob)
        return outcome

    @torch.no_grad()
    def imagine(self, env: gym.Env, plan: list[str], subgoals: list[str | None] | None = None) -> ImaginedOutcome:
        """Imagine the skills of ``plan`` in turn; each rollout moves on when its current skill succeeds."""
        unknown = [s for s in plan if s not in self.model.config.skills]
        if not plan or unknown:
            raise ValueError(f"unknown skill(s) {unknown or plan}; known: {', '.join(self.model.config.skills)}")
        subgoals = subgoals or [None] * len(plan)
        observations, actions = find_history(env).history()
        world = self.imagined
        # Changes are measured from the model's own reading of the present, which cancels its bias.
        start = _clip(torch.as_tensor(world.reset_from(observations, actions, batch_size=1)["state"][0])).numpy()
        world.reset_from(observations, actions, batch_size=self.samples)
        n = self.samples
        stage = torch.zeros(n, dtype=torch.long)  # which skill of the plan each rollout is on
        stage_start = torch.as_tensor(start, dtype=torch.float32).repeat(n, 1)  # (N, D) state when the skill began
        done_at = torch.full((n,), float(self.horizon * len(plan)))
        alive = torch.ones(n, dtype=torch.bool)
        skill_ids = torch.as_tensor([self.model.config.skills.index(s) for s in plan])
        min_health = torch.full((n,), float(start[_HEALTH]))
        spent = torch.zeros(n)
        latents, final_state = [], stage_start.clone()
        for t in range(self.horizon * len(plan)):
            running = alive & (stage < len(plan))
            if not running.any():
                break
            action = world.policy(skill_ids[stage.clamp(max=len(plan) - 1)], self.temperature)
            obs, _, terminated = world.step(action)
            state = _clip(torch.as_tensor(obs["state"]))  # (N, D)
            latents.append(world.carry.feat()[0])
            final_state = torch.where(running[:, None], state, final_state)
            min_health = torch.where(running, torch.minimum(min_health, state[:, _HEALTH]), min_health)
            alive &= ~torch.as_tensor(terminated)
            spent += running.float()
            for i, (skill, subgoal) in enumerate(zip(plan, subgoals, strict=True)):
                here = running & (stage == i)
                succeeded = here & self._succeeded(skill, subgoal, stage_start, state)
                timed_out = here & ~succeeded & (spent >= self.horizon)
                stage = torch.where(succeeded, stage + 1, stage)
                stage_start = torch.where(succeeded[:, None], state, stage_start)
                spent = torch.where(succeeded, torch.zeros_like(spent), spent)
                if i == len(plan) - 1:
                    done_at = torch.where(succeeded, torch.full_like(done_at, float(t + 1)), done_at)
                alive &= ~timed_out
        per_skill = [float((stage > i).float().mean()) for i in range(len(plan))]
        delta = (final_state - torch.as_tensor(start)).mean(0)
        frames = self.model.decoder(torch.stack(latents)) if latents else torch.zeros(0, 64, 64, 3)
        self.last = ImaginedOutcome(
            plan=list(plan),
            success_prob=per_skill[-1],
            predicted_inventory_delta=_changes(ITEM_NAMES, delta[:_N_ITEMS]),
            predicted_achievement_delta=_changes(ACHIEVEMENTS, delta[_N_ITEMS:_N_ITEMS + len(ACHIEVEMENTS)]),
            health_change=float(delta[_HEALTH]),
            danger=float((float(start[_HEALTH]) - min_health).clamp(min=0).mean()),
            frames=(frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
            per_skill=per_skill,
            steps=float(done_at.mean()),
            raw_success_prob=per_skill[-1],
        )
        return self.last

    @staticmethod
    def _succeeded(skill: str, subgoal: str | None, before: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(N,) mask: the predicted state shows the subgoal reached since ``before``, with the skill's effects.

        An achievement counter rising alone is not trusted: the imagined inventory must also show what the
        skill declares it consumes (falling) and gives (rising), so a hallucinated "table placed" with no
        wood to spend does not count.
        """
        spec = SKILLS[skill]
        change = state - before  # (N, D)
        full = before >= 8.5  # counters are capped at 9: one already there cannot show a rise
        ok = torch.ones(state.shape[0], dtype=torch.bool)
        for item in spec.consumes:
            ok &= change[:, ITEM_NAMES.index(item)] <= -0.5
        for item, n in spec.gives.items():
            if n > 0 and item not in VITALS:  # vitals rise by degrees: no proof of a skill
                i = ITEM_NAMES.index(item)
                ok &= (change[:, i] >= 0.5) | full[:, i]
        achievement = subgoal or spec.achievement
        if achievement is not None:
            i = _N_ITEMS + ACHIEVEMENTS.index(achievement)
            return ok & ((change[:, i] >= 0.5) | full[:, i])
        if not any(n > 0 for n in spec.gives.values()):  # explore: no effect to check
            return torch.zeros(state.shape[0], dtype=torch.bool)
        return ok


class ImagineTool(Tool):
    """``imagine(plan)``: the planner's look-ahead in the learned world model (DESIGN §4)."""

    name = "imagine"
    description = ("Imagine running a sequence of skills from the current situation in the learned world model; "
                   "returns the predicted success probability, inventory change, health drop and frames.")
    inputs = {"plan": {"type": "string",
                       "description": "skill names in order, separated by ';' or '->', "
                                      "e.g. 'collect wood; place table'"}}

    def __init__(self, env: gym.Env, imagination: Imagination | None = None) -> None:
        super().__init__()
        self.env = env
        self.imagination = imagination

    def setup(self) -> None:
        if self.imagination is None:
            self.imagination = Imagination()

    def forward(self, plan: str) -> ToolResult:
        skills = [name for name in map(normalise_skill_name, re.split(r";|->|→|,", plan)) if name]
        unknown = [s for s in skills if s not in SKILLS]
        if not skills or unknown:
            message = f"unknown skill(s) {unknown or plan!r}; known skills: {', '.join(sorted(SKILLS))}"
            return ToolResult(ok=False, text=message, error=message)
        outcome = self.imagination.imagine(self.env, skills)
        last = outcome.frames[-1] if len(outcome.frames) else None
        return ToolResult(ok=True, text=outcome.describe(), observation=last,
                          data={**outcome.to_record(), "frames": len(outcome.frames)})
