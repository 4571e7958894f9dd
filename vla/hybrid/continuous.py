"""Continuous actions for HybridVLA: uniform bins for the AR head, the raw vector for diffusion.

After RT-2 / HybridVLA: each action dimension is cut into ``num_bins`` uniform bins over
[``action_low``, ``action_high``] and the AR head predicts one bin token per dimension; the
diffusion head denoises the action vector itself, scaled to [-1, 1]. The collaborative ensemble
averages the AR bin centres with the diffusion action when the AR tokens are confident enough,
and uses the diffusion action alone otherwise.
"""

from __future__ import annotations

import torch

from vla.base import PolicyConfig


def normalize(actions: torch.Tensor, config: PolicyConfig) -> torch.Tensor:
    """Actions in [low, high] -> [-1, 1] (the diffusion head's range)."""
    low, high = config.action_low, config.action_high
    return (actions.clamp(low, high) - low) / (high - low) * 2.0 - 1.0


def denormalize(x: torch.Tensor, config: PolicyConfig) -> torch.Tensor:
    """[-1, 1] -> actions in [low, high]."""
    return config.action_low + (x.clamp(-1.0, 1.0) + 1.0) / 2.0 * (config.action_high - config.action_low)


def to_bins(actions: torch.Tensor, config: PolicyConfig, num_bins: int) -> torch.Tensor:
    """Actions -> bin indices in ``0..num_bins-1`` (int64), the bounds falling into the end bins."""
    unit = (normalize(actions, config) + 1.0) / 2.0  # [0, 1]
    return (unit * num_bins).long().clamp(0, num_bins - 1)


def bin_centres(bins: torch.Tensor, config: PolicyConfig, num_bins: int) -> torch.Tensor:
    """Bin indices -> the action value at each bin's centre."""
    return denormalize((bins.float() + 0.5) / num_bins * 2.0 - 1.0, config)


def fuse_continuous(
    ar_probs: torch.Tensor, diffusion_actions: torch.Tensor, config: PolicyConfig, num_bins: int, threshold: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The collaborative ensemble for continuous actions.

    Args:
        ar_probs: (B, H, A, num_bins) bin probabilities of every AR token.
        diffusion_actions: (B, H, A) denoised actions.
        threshold: mean max-probability of the chunk's AR tokens needed to fuse.

    Returns:
        (B, H, A) AR actions (bin centres), (B, H, A) ensemble actions, and the (B,) bool mask of fused rows.
    """
    top, bins = ar_probs.max(dim=-1)  # (B, H, A)
    ar_actions = bin_centres(bins, config, num_bins)
    fused = top.flatten(1).mean(dim=1) >= threshold  # (B,)
    ensemble = torch.where(fused[:, None, None], (ar_actions + diffusion_actions) / 2, diffusion_actions)
    return ar_actions, ensemble, fused
