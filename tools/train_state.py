"""What every resumable training loop here shares (``agents.finetune``, ``vla.train``).

The learning rate is a pure function of the step and the optimizer state travels as safetensors (never
pickle), so a run killed at step N and resumed repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def warmup_cosine(lr: float, warmup_steps: int, steps: int, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 10% of it at ``steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The optimizer's per-parameter state as flat ``"{index}.{slot}"`` tensors, and its (JSON) param groups."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
               for index, slots in state["state"].items() for name, value in slots.items()}
    return tensors, state["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   groups: list[dict[str, Any]]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
