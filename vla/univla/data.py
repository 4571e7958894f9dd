"""UniVLA's training rows, from the one episode format (``tools.episode_dataset``), per stage.

The unlabelled stages (``lam1``, ``lam2``, ``policy``) never read the ``action`` column: their rows are
frame pairs (o_t, o_t+k) of one episode, from any episodes (expert, random, failed; a dataset may have no
``action`` column or only :data:`~tools.episode_dataset.NO_ACTION`). Only ``decoder`` reads labels, and only
those of the first episodes of ``TrainConfig.data`` that make up ``label_fraction`` of its rows
(:func:`labelled_rows`), the same rows ``embodia train vla --max-rows N`` gives another policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tools.episode_dataset import (
    ACTION,
    EPISODE_INDEX,
    INSTRUCTION,
    NO_ACTION,
    OBS_IMAGE,
    OBS_STATE,
    MissingColumnsError,
    decode_png,
    load_episode_dataset,
)
from vla.data import Frames, action_chunks
from vla.hybrid.processor_hybrid import tokenize_instructions
from vla.univla.configuration_univla import UniVLAConfig

if TYPE_CHECKING:
    from vla.train import TrainConfig


class MissingLabelsError(MissingColumnsError):
    """The action decoder stage was given episodes without action labels."""


@dataclass
class PairFrames(Frames):
    """Frames over one image store: ``image`` holds every decoded frame once (not one per row); row i is
    ``image[rows[i]]`` and its o_t+k ``image[next_rows[i]]``."""

    ROW_FIELDS = ("rows", "next_rows", "state", "instruction", "action", "episode")

    rows: torch.Tensor
    next_rows: torch.Tensor

    def row_images(self, i: int | slice) -> dict[str, torch.Tensor]:
        return {"image": self.image[self.rows[i]], "next_image": self.image[self.next_rows[i]]}


def read_rows(root: str | Path, labels: bool) -> dict[str, np.ndarray | list[str] | None]:
    """Decoded rows of a dataset in written order; ``action`` only when ``labels`` (None if it has none)."""
    table = load_episode_dataset(root, columns=[EPISODE_INDEX, OBS_IMAGE, OBS_STATE, INSTRUCTION],
                                 optional=[ACTION] if labels else []).data
    n = table.num_rows
    actions = None
    if labels and ACTION in table.column_names:
        column = table.column(ACTION).combine_chunks()
        if hasattr(column, "flatten"):
            raise MissingLabelsError(f"dataset {root} has continuous actions; UniVLA's action decoder here is "
                                     "discrete (Crafter)")
        actions = np.array(column.to_numpy(), np.int64)
    return {"episode": np.array(table.column(EPISODE_INDEX).to_numpy(), np.int64),
            "image": np.stack([decode_png(b) for b in table.column(OBS_IMAGE).to_pylist()]),
            "state": np.array(table.column(OBS_STATE).combine_chunks().flatten(), np.float32).reshape(n, -1),
            "texts": [str(t) for t in table.column(INSTRUCTION).to_pylist()], "action": actions}


def labelled_rows(episodes: np.ndarray, fraction: float) -> int:
    """Rows of the first whole episodes that make up at most ``fraction`` of all rows (at least one episode)."""
    ends = np.flatnonzero(np.append(episodes[1:] != episodes[:-1], True)) + 1  # rows are contiguous per episode
    fitting = ends[ends <= fraction * len(episodes)]
    return int(fitting[-1]) if len(fitting) else int(ends[0])


def next_frame(episodes: np.ndarray, gap: int) -> np.ndarray:
    """Index of o_t+gap within the same episode for each row, -1 where the episode ends first."""
    n = len(episodes)
    out = np.full(n, -1, np.int64)
    same = episodes[gap:] == episodes[: n - gap]
    out[: n - gap][same] = np.arange(gap, n)[same]
    return out


def stage_frames(cfg: TrainConfig) -> PairFrames:
    """The rows ``cfg.policy.stage`` trains on (see the module docstring).

    Raises:
        MissingLabelsError: ``decoder`` was given a dataset without actions (naming the stage that needs them).
    """
    policy: UniVLAConfig = cfg.policy
    stage = policy.stage
    decoder = stage == "decoder"
    roots = [cfg.data, *(policy.unlabelled_data if stage in ("lam1", "lam2") else ())]
    parts, offset, base = [], 0, 0
    for root in roots:
        data = read_rows(root, labels=decoder)
        n = len(data["episode"])
        if decoder:
            keep = np.arange(n) < labelled_rows(data["episode"], policy.label_fraction)
            if data["action"] is None or not (data["action"][keep] != NO_ACTION).any():
                raise MissingLabelsError(f"dataset {root} has no action labels: UniVLA's action decoder stage needs "
                                         f"them (on {policy.label_fraction:.0%} of its rows); the latent action model "
                                         "and latent policy stages train without")
            keep &= data["action"] != NO_ACTION
            nexts = np.arange(n)  # o_t+k is not read by the decoder stage
            chunks = action_chunks(data["action"], data["episode"], policy.chunk_size)
        else:
            nexts = next_frame(data["episode"], policy.frame_gap)
            keep = nexts >= 0
            chunks = np.zeros((n, policy.chunk_size), np.int64)  # no labels read: placeholders only
        index = np.flatnonzero(keep)
        episode = data["episode"] - data["episode"].min() + offset
        offset = int(episode.max()) + 1
        parts.append((data["image"], index + base, nexts[index] + base, data["state"][index], chunks[index],
                      episode[index], [data["texts"][i] for i in index]))
        base += n
    texts = [t for part in parts for t in part[6]]
    return PairFrames(
        image=torch.from_numpy(np.concatenate([p[0] for p in parts])),
        rows=torch.from_numpy(np.concatenate([p[1] for p in parts])),
        next_rows=torch.from_numpy(np.concatenate([p[2] for p in parts])),
        state=torch.from_numpy(np.concatenate([p[3] for p in parts])),
        instruction=tokenize_instructions(texts, policy.max_instruction_len),
        action=torch.from_numpy(np.concatenate([p[4] for p in parts])),
        episode=torch.from_numpy(np.concatenate([p[5] for p in parts])),
        texts=texts,
    )
