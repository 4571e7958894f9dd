"""The pixel-mode view of an env: the frame, the reward and the episode end; nothing privileged.

``--perception pixels`` hands the agent a :class:`PixelEnv` instead of the Crafter env, so nothing in the
planner can read the semantic map, the inventory or the player's position by accident: observations keep
only the image (``state`` is zeros unless a ``state_reader`` fills it from the frame), info keeps only
``reward`` and ``discount``, and ``unwrapped`` is the wrapper itself, whose privileged accessors raise
:class:`PrivilegedStateWithheld`. The skills are the one declared exception (DESIGN §5): the scripted
experts read the map by design, so the agent hands them :attr:`PixelEnv.skill_env`, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

#: What the wrapper refuses: every privileged accessor of ``tools.envs.crafter.CrafterEnv``.
WITHHELD = ("semantic", "materials", "inventory", "achievements", "player_pos", "facing", "daylight", "world",
            "player", "seen", "describe", "visible_things", "death_cause")
KEPT_INFO = ("reward", "discount")


class PrivilegedStateWithheld(AttributeError):
    """The agent asked a pixel-mode env for privileged state."""


StateReader = Callable[[np.ndarray], np.ndarray]


class PixelEnv(gym.Wrapper):
    """Frame, reward and episode end only; ``state_reader(image)`` may fill ``obs["state"]`` from the frame."""

    def __init__(self, env: gym.Env, state_reader: StateReader | None = None) -> None:
        super().__init__(env)
        self._state_reader = state_reader

    @property
    def unwrapped(self) -> PixelEnv:  # the agent's ``env.unwrapped.semantic`` must fail, not reach the world
        return self

    @property
    def skill_env(self) -> gym.Env:
        """The privileged env, for the skill runner only (the scripted skills read the map by design)."""
        return self.env

    @property
    def steps(self) -> int:
        """Env steps so far: the agent's own clock, not state."""
        return int(self.env.unwrapped.steps)

    def __getattr__(self, name: str) -> Any:
        if name in WITHHELD:
            raise PrivilegedStateWithheld(f"pixel perception withholds {name!r}: the agent sees only the frame, the "
                                          "reward and the episode end (use --perception privileged to read it)")
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def _filter(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = obs["image"]
        state = self._state_reader(image) if self._state_reader else np.zeros_like(obs["state"])
        return {"image": image, "state": np.asarray(state, np.float32)}

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return self._filter(obs), {k: info[k] for k in KEPT_INFO if k in info}

    def step(self, action: int):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._filter(obs), reward, terminated, truncated, {k: info[k] for k in KEPT_INFO if k in info}

    def observe(self) -> dict[str, np.ndarray]:
        """The current observation, filtered."""
        return self._filter(self.env.unwrapped.observe())

    def frame(self) -> np.ndarray:
        """The current 64x64 frame: all the agent's perception reads."""
        return self.env.unwrapped.observe()["image"]
