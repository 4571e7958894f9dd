"""RT-H's training rows: ``vla.data.Frames`` plus each row's language-motion index (``language_motion`` column)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tools.episode_dataset import LANGUAGE_MOTION, shard_files
from tools.language_motion import CRAFTER_MOTIONS
from vla.data import Frames, load_frames


class MissingMotionsError(ValueError):
    """The training data has no ``language_motion`` column, or phrases outside the policy's vocabulary."""


@dataclass
class MotionFrames(Frames):
    """Frames whose rows also carry ``motion`` (N,) int64: the index of the row's phrase in the vocabulary."""

    motion: torch.Tensor | None = None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), "motion": self.motion[i]}

    def subset(self, mask: torch.Tensor) -> MotionFrames:
        frames = super().subset(mask)
        return MotionFrames(**{k: getattr(frames, k) for k in Frames.__dataclass_fields__},
                            motion=self.motion[mask.nonzero().squeeze(1)])


def read_motions(root: str | Path) -> list[str]:
    """The ``language_motion`` of every row, in the order ``vla.data.load_frames`` reads them."""
    import pyarrow.parquet as pq

    files = shard_files(root)
    missing = [f for f in files if LANGUAGE_MOTION not in pq.read_schema(f).names]
    if missing:
        raise MissingMotionsError(
            f"{missing[0]} has no {LANGUAGE_MOTION!r} column, which RT-H's motion query learns from ({len(missing)} "
            f"of {len(files)} shards lack it); add it with `python -m tools.language_motion {root}` (derived from "
            f"the actions and frames, nothing recollected)")
    return [m for f in files for m in pq.read_table(f, columns=[LANGUAGE_MOTION]).column(0).to_pylist()]


def motion_vocabulary(seen: Sequence[str], given: Sequence[str] = ()) -> tuple[str, ...]:
    """``given`` when set (fine-tuning keeps the checkpoint's), Crafter's fixed phrases when the data's fit in
    them, else the data's own phrases (Meta-World's compose axis words)."""
    if given:
        return tuple(given)
    return CRAFTER_MOTIONS if set(seen) <= set(CRAFTER_MOTIONS) else tuple(sorted(set(seen)))


def load_motion_frames(root: str | Path, chunk_size: int, max_instruction_len: int,
                       vocabulary: Sequence[str] = ()) -> tuple[MotionFrames, tuple[str, ...]]:
    """(frames with motion indices, the vocabulary used) of an episode dataset with ``language_motion``."""
    motions = read_motions(root)
    frames = load_frames(root, chunk_size, max_instruction_len)
    vocabulary = motion_vocabulary(motions, vocabulary)
    unknown = sorted(set(motions) - set(vocabulary))
    if unknown:
        raise MissingMotionsError(f"dataset {root} has motions {unknown[:5]} outside the policy's vocabulary of "
                                  f"{len(vocabulary)} phrases")
    index = {m: i for i, m in enumerate(vocabulary)}
    motion = torch.tensor([index[m] for m in motions], dtype=torch.long)
    return MotionFrames(**{k: getattr(frames, k) for k in Frames.__dataclass_fields__}, motion=motion), vocabulary
