"""Turns raw observations and instruction strings into the tensors HybridVLA reads.

Instructions are UTF-8 bytes (a 256-symbol vocabulary plus padding): skill names are short, the
model is trained from scratch, and bytes need no tokenizer file beside the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vla.hybrid.configuration_hybrid import HybridConfig

PAD_TOKEN = 256
VOCAB_SIZE = 257


def tokenize_instructions(instructions: Sequence[str], max_len: int) -> torch.Tensor:
    """Byte tokens, cut or right-padded to ``max_len``: ``(B, max_len)`` int64."""
    out = torch.full((len(instructions), max_len), PAD_TOKEN, dtype=torch.long)
    for i, text in enumerate(instructions):
        data = list(text.strip().lower().encode("utf-8"))[:max_len]
        out[i, : len(data)] = torch.tensor(data, dtype=torch.long)
    return out


def preprocess(
    config: HybridConfig, obs: dict[str, np.ndarray], instructions: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Batched obs (leading batch dim) + instructions -> ``{"image": (B, H, W, C) uint8, "state": (B, S),
    "instruction": (B, L)}``; shapes are checked against the config."""
    config.check_observation(obs)
    return {
        "image": torch.as_tensor(np.asarray(obs["image"], np.uint8)),
        "state": torch.as_tensor(np.asarray(obs["state"], np.float32)),
        "instruction": tokenize_instructions(instructions, config.max_instruction_len),
    }
