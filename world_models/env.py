"""Imagination as an environment: branch many rollouts from a real history and step them in parallel.

DreamerV3 trains its actor entirely on such imagined rollouts; here they serve the planner,
which compares hundreds of candidate action or skill sequences (RAFA's "reason for future")
without touching the real world. ``reset_from`` filters a real observation history into the
model state; ``step`` advances every copy with its own action. Rolling out past the sequence
length the model was trained on is extrapolation, so it is logged as a warning.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from world_models.base import Latent
from world_models.rssm import RSSMWorldModel

log = logging.getLogger(__name__)


class WorldModelEnv:
    """A batch of imagined worlds driven by one :class:`RSSMWorldModel`.

    Args:
        model: the trained world model (put in eval mode).
        seed: seeds the latent sampling, so the same history and actions give the same rollouts.
        render: decode images at every step (costly; off for fast batched planning).
    """

    def __init__(self, model: RSSMWorldModel, seed: int = 0, render: bool = True) -> None:
        self.model = model.eval()
        self.seed, self.render = seed, render
        self.generator = torch.Generator(device=model.device)
        self.carry: Latent | None = None
        self.steps = 0
        self._warned = False

    @property
    def num_envs(self) -> int:
        return 0 if self.carry is None else int(self.carry.deter.shape[0])

    @torch.no_grad()
    def reset_from(self, observations: dict[str, np.ndarray], actions: np.ndarray,
                   batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Start from a real history: ``observations`` image (T, H, W, 3) and state (T, D), or batched (B, T, ...).

        Args:
            observations: the frames seen so far, oldest first.
            actions: the T - 1 (or T, the last ignored) actions taken after each frame: (T,) ints or (T, A).
            batch_size: copies of an unbatched history to branch (default 1).

        Returns:
            The model's reading of the last frame: ``image`` (B, H, W, 3) uint8 (when rendering), ``state`` (B, D).
        """
        image = torch.as_tensor(np.asarray(observations["image"]))
        state = torch.as_tensor(np.asarray(observations["state"]), dtype=torch.float32)
        if image.ndim == 4:  # one history (T, H, W, 3) -> (B, T, H, W, 3)
            image, state = image[None], state[None]
            actions = np.asarray(actions)[None]
        steps = image.shape[1]
        actions = torch.as_tensor(np.asarray(actions))
        prev = torch.full((actions.shape[0], steps, *actions.shape[2:]), -1 if actions.ndim == 2 else 0,
                          dtype=actions.dtype)
        prev[:, 1:] = actions[:, : steps - 1]
        is_first = torch.zeros(image.shape[:2], dtype=torch.bool)
        is_first[:, 0] = True
        self.generator.manual_seed(self.seed)
        carry, _, _ = self.model.observe(self.model.initial(image.shape[0]), image, state, prev, is_first,
                                         self.generator)
        if batch_size is not None and batch_size != carry.deter.shape[0]:
            if carry.deter.shape[0] != 1:
                raise ValueError(f"batch_size={batch_size} needs one history to branch, got {carry.deter.shape[0]}")
            carry = carry.repeat(batch_size)
        self.carry, self.steps, self._warned = carry, 0, False
        return self._observation(self.model.predict(carry, image=self.render))

    @torch.no_grad()
    def step(self, actions: np.ndarray | torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Advance every imagined world by one action: (B,) ints or (B, A) -> (obs, reward (B,), terminated (B,))."""
        if self.carry is None:
            raise RuntimeError("call reset_from(observations, actions) before step()")
        actions = torch.as_tensor(actions, device=self.model.device)
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"got {actions.shape[0]} actions for {self.num_envs} imagined worlds")
        self.carry = self.model.rssm.step(self.carry, self.model.action_input(actions), self.generator)
        self.steps += 1
        if self.steps > self.model.config.seq_len and not self._warned:
            log.warning("imagined %d steps, past the %d-step sequences the world model was trained on; "
                        "predictions are extrapolation", self.steps, self.model.config.seq_len)
            self._warned = True
        pred = self.model.predict(self.carry, image=self.render)
        return self._observation(pred), pred["reward"].cpu().numpy(), (pred["cont"] < 0.5).cpu().numpy()

    @torch.no_grad()
    def policy(self, skills: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Actions the skill-conditioned action prior picks for each world: skills (B,) -> (B,)."""
        return self.model.policy(self.carry, skills.to(self.model.device), self.generator, temperature)

    @staticmethod
    def _observation(pred: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        obs = {"state": pred["state"].cpu().numpy()}
        if "image" in pred:
            obs["image"] = (pred["image"] * 255).round().to(torch.uint8).cpu().numpy()
        return obs
