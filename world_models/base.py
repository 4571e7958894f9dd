"""The world-model contract: ``observe``, ``imagine`` and ``loss`` over an explicit carry.

As in DreamerV3's ``embodied/core/base.py``, the recurrent state is passed in and returned
rather than hidden inside the module, so one model serves many parallel rollouts, a rollout
can branch from any point of a real episode, and training and imagination share one code path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Latent:
    """Model state at one or more time steps: deterministic h and a one-hot sample of z.

    Args:
        deter: GRU state, shape (..., D).
        stoch: one-hot categorical sample, shape (..., S, C) (straight-through gradients).
        logits: log-probabilities of z that ``stoch`` was drawn from, shape (..., S, C).
    """

    deter: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor

    def feat(self) -> torch.Tensor:
        """Heads read h and z side by side: (..., D + S * C)."""
        return torch.cat([self.deter, self.stoch.flatten(-2)], -1)

    @staticmethod
    def stack(steps: list[Latent]) -> Latent:
        """Stack a list of (B, ...) latents into (B, T, ...)."""
        return Latent(*(torch.stack([getattr(s, k) for s in steps], 1) for k in ("deter", "stoch", "logits")))

    def repeat(self, n: int) -> Latent:
        """Each of the B states n times in a row: (B * n, ...), for branching many plans from one state."""
        return Latent(*(t.repeat_interleave(n, 0) for t in (self.deter, self.stoch, self.logits)))


class WorldModel(nn.Module, ABC):
    """Learned dynamics with an explicit carry (a :class:`Latent` with batch shape (B,))."""

    @abstractmethod
    def initial(self, batch_size: int) -> Latent:
        """The carry before the first observation."""

    @abstractmethod
    def observe(self, carry: Latent, image: torch.Tensor, state: torch.Tensor, prev_action: torch.Tensor,
                is_first: torch.Tensor) -> tuple[Latent, Latent, torch.Tensor]:
        """Filter real observations (B, T, ...) -> (last carry, posteriors (B, T), prior logits (B, T, S, C))."""

    @abstractmethod
    def imagine(self, carry: Latent, actions: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[Latent, Latent]:
        """Roll ``actions`` (B, T[, A]) forward from ``carry`` without observations -> (last carry, (B, T) states)."""

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of real sequences, and its parts as floats for logging."""
