"""Shared checks for the VLA tests: a few optimizer steps on real collected rows lower the loss; a policy
survives a save/load round trip."""

import torch

from vla.data import load_frames
from vla.hybrid import HybridConfig, HybridVLAPolicy

#: The smallest HybridVLA the tests build: one layer, 32 wide (trains and acts in milliseconds).
TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2}


def loss_before_and_after(config: HybridConfig, dataset, steps: int = 25, rows: int = 64) -> tuple[float, float]:
    """The joint loss on the dataset's first ``rows`` rows before and after ``steps`` AdamW steps on them
    (the same noise and timesteps for both measurements)."""
    torch.manual_seed(0)
    frames = load_frames(dataset, config.chunk_size, config.max_instruction_len)
    batch = frames[slice(0, rows)]
    policy = HybridVLAPolicy(config)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)

    def loss() -> float:
        torch.manual_seed(1)
        with torch.no_grad():
            return policy(batch)[0].item()

    before = loss()
    for _ in range(steps):
        optimizer.zero_grad()
        policy(batch)[0].backward()
        optimizer.step()
    return before, loss()


def saved_and_loaded(config: HybridConfig, folder) -> tuple[HybridVLAPolicy, HybridVLAPolicy]:
    """A fresh (seeded) policy in eval mode and its copy saved to and loaded from ``folder``, with the same
    config; both reset, ready to act."""
    torch.manual_seed(0)
    policy = HybridVLAPolicy(config).eval()
    policy.save_pretrained(folder)
    loaded = HybridVLAPolicy.from_pretrained(folder)
    assert loaded.config == policy.config
    for p in (policy, loaded):
        p.reset()
    return policy, loaded
