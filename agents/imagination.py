"""Imagination for the planner: roll skills forward in the learned world model before acting.

RIG-style self-correction (DESIGN §5) asks "what will happen if I run this skill now?" before the
real step is taken; RAFA's transition model asks the same for whole candidate futures. Both are
answered here by branching ``samples`` imagined rollouts from the real observation history and
driving each with the world model's skill-conditioned action prior (behaviour cloned from the
scripted experts), so no simulator copy is consulted. A skill counts as succeeded in a rollout
once the predicted count of its achievement rises by at least one half (or, for skills without
an achievement, once what it ``gives`` shows up in the predicted inventory).

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

from tools.base import Tool, ToolResult
from tools.envs.crafter import ACHIEVEMENTS, ITEM_NAMES, VITALS
from tools.skills.crafter import SKILLS
from world_models.env import WorldModelEnv
from world_models.rssm import RSSMWorldModel, load_world_model

#: The world model shipped with the repository (see its README for how it was trained).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "world_models" / "checkpoints" / "rssm-crafter-tiny"
_N_ITEMS = len(ITEM_NAMES)
_HEALTH = ITEM_NAMES.index("health")


def _clip(state: torch.Tensor) -> torch.Tensor:
    """Predicted states clipped to what Crafter can show: counts in [0, 9] (the rest untouched)."""
    counts = len(ITEM_NAMES) + len(ACHIEVEMENTS)
    return torch.cat([state[..., :counts].clamp(0, 9), state[..., counts:]], -1)


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
        success_prob: share of imagined rollouts in which every skill succeeded.
        predicted_inventory_delta: mean predicted change of each inventory item (|change| >= 0.5 only).
        danger: mean predicted fall in health below its current value.
        frames: one rollout's predicted frames (T, H, W, 3) uint8.
        per_skill: success probability of each step of the plan.
        steps: mean imagined env steps until the plan succeeded (or the horizon ran out).
    """

    plan: list[str]
    success_prob: float
    predicted_inventory_delta: dict[str, float]
    danger: float
    frames: np.ndarray
    per_skill: list[float] = field(default_factory=list)
    steps: float = 0.0

    def describe(self) -> str:
        gains = ", ".join(f"{v:+.1f} {k}" for k, v in self.predicted_inventory_delta.items()) or "no inventory change"
        return (f"imagined {' → '.join(self.plan)}: success {self.success_prob:.0%} in ~{self.steps:.0f} steps, "
                f"{gains}, health drop {self.danger:.1f}")

    def to_record(self) -> dict[str, Any]:
        return {"plan": self.plan, "success_prob": round(self.success_prob, 3), "per_skill": self.per_skill,
                "predicted_inventory_delta": self.predicted_inventory_delta, "danger": round(self.danger, 2),
                "steps": round(self.steps, 1)}


class Imagination:
    """Predict skill outcomes in the world model from the real observation history.

    Args:
        model: a world model, or the path of a checkpoint folder (default: the shipped tiny model).
        samples: imagined rollouts per question (their share of successes is the probability).
        horizon: imagined steps allowed per skill (default: the model's training sequence length).
        seed: seeds the rollouts, so the same situation gets the same answer.
        temperature: of the cloned action prior; below 1 the imagined skill acts more like the expert.
    """

    def __init__(self, model: RSSMWorldModel | str | Path = DEFAULT_CHECKPOINT, samples: int = 64,
                 horizon: int | None = None, seed: int = 0, temperature: float = 0.5) -> None:
        self.model = model if isinstance(model, RSSMWorldModel) else load_world_model(model)
        if not self.model.config.skills:
            raise ValueError("this world model has no skill-conditioned action prior; train it on skill-labelled data")
        self.samples, self.temperature = samples, temperature
        self.horizon = horizon or self.model.config.seq_len
        self.imagined = WorldModelEnv(self.model, seed=seed, render=False)

    def check(self, env: gym.Env, skill: str, subgoal_achievement: str | None = None) -> ImaginedOutcome:
        """Imagine running ``skill`` now; success means ``subgoal_achievement`` (default: the skill's own) unlocks."""
        return self.imagine(env, [skill], [subgoal_achievement])

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
        delta = (final_state[:, :_N_ITEMS] - torch.as_tensor(start[:_N_ITEMS])).mean(0)
        frames = self.model.decoder(torch.stack(latents)) if latents else torch.zeros(0, 64, 64, 3)
        return ImaginedOutcome(
            plan=list(plan),
            success_prob=per_skill[-1],
            predicted_inventory_delta={n: round(float(v), 1) for n, v in zip(ITEM_NAMES, delta, strict=True)
                                       if abs(float(v)) >= 0.5},
            danger=float((float(start[_HEALTH]) - min_health).clamp(min=0).mean()),
            frames=(frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
            per_skill=per_skill,
            steps=float(done_at.mean()),
        )

    @staticmethod
    def _succeeded(skill: str, subgoal: str | None, before: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(N,) mask: the predicted state shows the subgoal reached since ``before``, with the skill's effects.

        An achievement counter rising alone is not trusted: the imagined inventory must also show what the
        skill declares it consumes (falling) and gives (rising), so a hallucinated "table placed" with no
        wood to spend does not count.
        """
        spec = SKILLS[skill]
        change = state - before  # (N, D)
        ok = torch.ones(state.shape[0], dtype=torch.bool)
        for item in spec.consumes:
            ok &= change[:, ITEM_NAMES.index(item)] <= -0.5
        for item, n in spec.gives.items():
            if n > 0 and item not in VITALS:  # vitals rise by degrees: no proof of a skill
                ok &= change[:, ITEM_NAMES.index(item)] >= 0.5
        achievement = subgoal or spec.achievement
        if achievement is not None:
            return ok & (change[:, _N_ITEMS + ACHIEVEMENTS.index(achievement)] >= 0.5)
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
        skills = [" ".join(s.strip().lower().replace("_", " ").split()) for s in re.split(r";|->|→|,", plan)]
        skills = [next((k for k in SKILLS if k.replace("_", " ") == s), s) for s in skills if s]
        unknown = [s for s in skills if s not in SKILLS]
        if not skills or unknown:
            message = f"unknown skill(s) {unknown or plan!r}; known skills: {', '.join(sorted(SKILLS))}"
            return ToolResult(ok=False, text=message, error=message)
        outcome = self.imagination.imagine(self.env, skills)
        last = outcome.frames[-1] if len(outcome.frames) else None
        return ToolResult(ok=True, text=outcome.describe(), observation=last,
                          data={**outcome.to_record(), "frames": len(outcome.frames)})
