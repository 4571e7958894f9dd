"""Episode datasets (``tools.episode_dataset``) as in-memory tensors for policy training.

Crafter frames are small (64x64x3), so a whole dataset of ~20k steps is decoded once into
uint8 arrays (~250 MB) and batches are sliced from memory: no per-step PNG decoding in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    shard_files,
)
from vla.hybrid.processor_hybrid import tokenize_instructions

#: Action index used to pad chunks past an episode's end (crafter's ``noop``).
PAD_ACTION = 0


@dataclass
class Frames(torch.utils.data.Dataset):
    """Training rows: ``image`` (N, H, W, C) uint8, ``state`` (N, S), ``instruction`` (N, L), ``action`` (N, chunk)
    int64 indices or (N, chunk, A) float32 vectors (continuous datasets)."""

    #: The fields with one entry per row, which `subset` indexes (``texts`` is one too, a list); not annotated,
    #: so not a dataclass field.
    ROW_FIELDS = ("image", "state", "instruction", "action", "episode")

    image: torch.Tensor
    state: torch.Tensor
    instruction: torch.Tensor
    action: torch.Tensor
    episode: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.action)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**self.row_images(i), "state": self.state[i], "instruction": self.instruction[i],
                "action": self.action[i]}

    def row_images(self, i: int) -> dict[str, torch.Tensor]:
        """The image entries of row(s) ``i``."""
        return {"image": self.image[i]}

    def subset(self, mask: torch.Tensor) -> Frames:
        index = mask.nonzero().squeeze(1)
        return replace(self, **{f: getattr(self, f)[index] for f in self.ROW_FIELDS},
                       texts=[self.texts[i] for i in index.tolist()])


def action_chunks(actions: np.ndarray, episodes: np.ndarray, chunk_size: int) -> np.ndarray:
    """(N, chunk) the next ``chunk_size`` actions from each row within its episode, padded with ``PAD_ACTION``."""
    n = len(actions)
    out = np.full((n, chunk_size), PAD_ACTION, dtype=np.int64)
    for k in range(chunk_size):
        same = np.zeros(n, bool)
        same[: n - k] = episodes[k:] == episodes[: n - k]
        out[same, k] = actions[k:][same[: n - k]]
    return out


def vector_chunks(actions: np.ndarray, episodes: np.ndarray, chunk_size: int) -> np.ndarray:
    """(N, chunk, A) the next ``chunk_size`` action vectors from each row within its episode; past the
    episode's end the last action repeats (edge padding: the arm keeps doing what finished the task)."""
    n = len(actions)
    is_last = np.append(episodes[1:] != episodes[:-1], True)  # rows of an episode are contiguous
    last = np.minimum.accumulate(np.where(is_last, np.arange(n), n)[::-1])[::-1]  # each row's episode end
    index = np.minimum(np.arange(n)[:, None] + np.arange(chunk_size)[None], last[:, None])  # (N, chunk)
    return actions[index]


def dataset_spaces(root: str | Path) -> dict[str, int | str]:
    """``PolicyConfig`` fields read from the first row: ``state_dim``, ``action_space`` and, when continuous,
    ``action_dim`` (a discrete dataset cannot tell its action count, so ``num_actions`` keeps its default)."""
    import pyarrow.parquet as pq

    row = pq.ParquetFile(shard_files(root)[0]).read_row_group(0, columns=[OBS_STATE, ACTION]).slice(0, 1).to_pylist()
    if not row:
        raise ValueError(f"dataset {root} has an empty first shard")
    spaces: dict[str, int | str] = {"state_dim": len(row[0][OBS_STATE])}
    if isinstance(row[0][ACTION], list):
        spaces.update(action_space="continuous", action_dim=len(row[0][ACTION]))
    return spaces


def load_frames(root: str | Path, chunk_size: int, max_instruction_len: int) -> Frames:
    """Read and decode an episode dataset (rows in episode/frame order, as written)."""
    columns = [c for c in REQUIRED_COLUMNS if c != DONE]
    table = load_episode_dataset(root, columns=columns).data  # the arrow table: no per-row python formatting
    episodes = np.array(table.column(EPISODE_INDEX).to_numpy(), np.int64)
    texts = [str(t) for t in table.column(INSTRUCTION).to_pylist()]
    states = np.array(table.column(OBS_STATE).combine_chunks().flatten(), np.float32).reshape(len(episodes), -1)
    action_column = table.column(ACTION).combine_chunks()
    if hasattr(action_column, "flatten"):  # a list column: continuous action vectors
        vectors = np.array(action_column.flatten(), np.float32).reshape(len(episodes), -1)
        chunks = vector_chunks(vectors, episodes, chunk_size)
    else:
        chunks = action_chunks(np.array(action_column.to_numpy(), np.int64), episodes, chunk_size)
    return Frames(
        image=torch.from_numpy(np.stack([decode_png(b) for b in table.column(OBS_IMAGE).to_pylist()])),
        state=torch.from_numpy(states),
        instruction=tokenize_instructions(texts, max_instruction_len),
        action=torch.from_numpy(chunks),
        episode=torch.from_numpy(episodes),
        texts=texts,
    )


def split_by_episode(frames: Frames, every: int) -> tuple[Frames, Frames]:
    """(train, validation): every ``every``-th episode goes to validation, so no episode is in both."""
    val = frames.episode % every == every - 1
    return frames.subset(~val), frames.subset(val)
