"""Episode datasets (``tools.episode_dataset``) as in-memory tensors for policy training.

Crafter frames are small (64x64x3), so a whole dataset of ~20k steps is decoded once into
uint8 arrays (~250 MB) and batches are sliced from memory: no per-step PNG decoding in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tools.episode_dataset import (
    ACTION,
    DONE,
    EPISODE_INDEX,
    INSTRUCTION,
    OBS_IMAGE,
    OBS_STATE,
    REQUIRED_COLUMNS,
    decode_png,
    load_episode_dataset,
)
from vla.hybrid.processor_hybrid import tokenize_instructions

#: Action index used to pad chunks past an episode's end (crafter's ``noop``).
PAD_ACTION = 0


@dataclass
class Frames(torch.utils.data.Dataset):
    """Training rows: ``image`` (N, H, W, C) uint8, ``state`` (N, S), ``instruction`` (N, L), ``action`` (N, chunk)."""

    image: torch.Tensor
    state: torch.Tensor
    instruction: torch.Tensor
    action: torch.Tensor
    episode: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.action)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.image[i], "state": self.state[i], "instruction": self.instruction[i],
                "action": self.action[i]}

    def subset(self, mask: torch.Tensor) -> Frames:
        index = mask.nonzero().squeeze(1)
        return Frames(self.image[index], self.state[index], self.instruction[index], self.action[index],
                      self.episode[index], [self.texts[i] for i in index.tolist()])


def action_chunks(actions: np.ndarray, episodes: np.ndarray, chunk_size: int) -> np.ndarray:
    """(N, chunk) the next ``chunk_size`` actions from each row within its episode, padded with ``PAD_ACTION``."""
    n = len(actions)
    out = np.full((n, chunk_size), PAD_ACTION, dtype=np.int64)
    for k in range(chunk_size):
        same = np.zeros(n, bool)
        same[: n - k] = episodes[k:] == episodes[: n - k]
        out[same, k] = actions[k:][same[: n - k]]
    return out


def load_frames(root: str | Path, chunk_size: int, max_instruction_len: int) -> Frames:
    """Read and decode an episode dataset (rows in episode/frame order, as written)."""
    columns = [c for c in REQUIRED_COLUMNS if c != DONE]
    table = load_episode_dataset(root, columns=columns).data  # the arrow table: no per-row python formatting
    episodes = np.array(table.column(EPISODE_INDEX).to_numpy(), np.int64)
    actions = np.array(table.column(ACTION).to_numpy(), np.int64)
    texts = [str(t) for t in table.column(INSTRUCTION).to_pylist()]
    states = np.array(table.column(OBS_STATE).combine_chunks().flatten(), np.float32).reshape(len(actions), -1)
    return Frames(
        image=torch.from_numpy(np.stack([decode_png(b) for b in table.column(OBS_IMAGE).to_pylist()])),
        state=torch.from_numpy(states),
        instruction=tokenize_instructions(texts, max_instruction_len),
        action=torch.from_numpy(action_chunks(actions, episodes, chunk_size)),
        episode=torch.from_numpy(episodes),
        texts=texts,
    )


def split_by_episode(frames: Frames, every: int) -> tuple[Frames, Frames]:
    """(train, validation): every ``every``-th episode goes to validation, so no episode is in both."""
    val = frames.episode % every == every - 1
    return frames.subset(~val), frames.subset(val)
