"""Episode datasets: one row per env step, parquet shards readable by 🤗 ``datasets`` (DESIGN §6).

The column names follow LeRobot (``episode_index``, ``frame_index``, ``observation.image``, ...)
so the files read like LeRobot's and other tools can load them. Images are stored as PNG bytes
(lossless, ~10x smaller than raw 64x64x3). Each shard is written whole via a temp file + rename,
so a killed writer never leaves half a shard and a rerun can skip the shards that exist.

This lives beside ``tools/episodes.py`` (the per-run JSONL record) rather than inside it: it is
a different record (training rows, not a run log), pulls in pyarrow/PIL, and grew past ~150 lines.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EPISODE_INDEX = "episode_index"
FRAME_INDEX = "frame_index"
OBS_IMAGE = "observation.image"
OBS_STATE = "observation.state"
ACTION = "action"
INSTRUCTION = "instruction"
REWARD = "reward"
DONE = "done"
#: Every episode dataset has these columns; readers check them with :func:`check_columns`.
REQUIRED_COLUMNS: tuple[str, ...] = (
    EPISODE_INDEX, FRAME_INDEX, OBS_IMAGE, OBS_STATE, ACTION, INSTRUCTION, REWARD, DONE,
)
SHARD_GLOB = "data/*.parquet"
CARD_FILE = "README.md"


class MissingColumnsError(ValueError):
    """A dataset lacks columns a reader needs; the message lists them."""


@dataclass
class EpisodeBuffer:
    """The steps of one episode as they happen: the observation *before* each action.

    ``reward`` is what the action earned; ``done`` marks the episode's last row. An action is an
    index (discrete envs: stored as int64) or a vector (continuous envs: stored as a float32 list).
    """

    instruction: str
    images: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[int | np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def add(self, obs: dict[str, np.ndarray], action: int | np.ndarray, reward: float) -> None:
        self.images.append(np.asarray(obs["image"], np.uint8))
        self.states.append(np.asarray(obs["state"], np.float32))
        value = np.asarray(action)
        discrete = value.ndim == 0 and np.issubdtype(value.dtype, np.integer)
        self.actions.append(int(value) if discrete else np.atleast_1d(value).astype(np.float32))
        self.rewards.append(float(reward))

    def __len__(self) -> int:
        return len(self.actions)


def encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.uint8)


def write_shard(path: str | Path, episodes: Sequence[EpisodeBuffer], first_episode_index: int) -> int:
    """Write ``episodes`` (numbered from ``first_episode_index``) as one parquet file; returns rows written.

    ``action`` is int64 for discrete episodes and a float32 list for continuous ones (LeRobot's layout).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in REQUIRED_COLUMNS}
    for offset, episode in enumerate(episodes):
        n = len(episode)
        columns[EPISODE_INDEX] += [first_episode_index + offset] * n
        columns[FRAME_INDEX] += list(range(n))
        columns[OBS_IMAGE] += [encode_png(image) for image in episode.images]
        columns[OBS_STATE] += [state.tolist() for state in episode.states]
        columns[ACTION] += [a.tolist() if isinstance(a, np.ndarray) else a for a in episode.actions]
        columns[INSTRUCTION] += [episode.instruction] * n
        columns[REWARD] += episode.rewards
        columns[DONE] += [i == n - 1 for i in range(n)]
    continuous = any(isinstance(e.actions[0], np.ndarray) for e in episodes if len(e))
    schema = pa.schema([
        (EPISODE_INDEX, pa.int64()), (FRAME_INDEX, pa.int64()), (OBS_IMAGE, pa.binary()),
        (OBS_STATE, pa.list_(pa.float32())), (ACTION, pa.list_(pa.float32()) if continuous else pa.int64()),
        (INSTRUCTION, pa.string()),
        (REWARD, pa.float32()), (DONE, pa.bool_()),
    ])
    table = pa.table(columns, schema=schema)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return table.num_rows


def shard_files(root: str | Path) -> list[Path]:
    """The dataset's shards in name order (``root`` may also be a single parquet file)."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(root.glob(SHARD_GLOB))
    if not files:
        raise FileNotFoundError(f"no parquet shards matching {root / SHARD_GLOB}")
    return files


def shard_summary(path: str | Path) -> tuple[int, list[str]]:
    """(rows, the instruction of each episode) of a written shard, read without decoding images."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=[EPISODE_INDEX, INSTRUCTION])
    indices, names = table.column(EPISODE_INDEX).to_pylist(), table.column(INSTRUCTION).to_pylist()
    return table.num_rows, list(dict(zip(indices, names, strict=True)).values())


def check_columns(names: Iterable[str], required: Sequence[str] = REQUIRED_COLUMNS, where: str = "dataset") -> None:
    """Raise :class:`MissingColumnsError` listing every required column absent from ``names``."""
    missing = [name for name in required if name not in set(names)]
    if missing:
        raise MissingColumnsError(f"{where} is missing columns {missing}; expected all of {list(required)}")


def load_episode_dataset(root: str | Path, columns: Sequence[str] | None = None):
    """Load the shards under ``root`` as a 🤗 ``datasets.Dataset`` after checking the columns."""
    import datasets
    import pyarrow.parquet as pq

    files = shard_files(root)
    check_columns(pq.read_schema(files[0]).names, columns or REQUIRED_COLUMNS, where=str(root))
    dataset = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    return dataset.select_columns(list(columns)) if columns else dataset


def write_dataset_card(root: str | Path, title: str, facts: dict[str, Any], counts: dict[str, int],
                       action: str = "the env's action index") -> Path:
    """A short README (env, seeds, counts, command) so the folder explains itself; ``action`` says what
    the ``action`` column holds."""
    lines = [f"# {title}", "", "Written by embodia: parquet shards under `data/`, one row per step.", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items()]
    lines += ["", "| instruction | episodes |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in sorted(counts.items())]
    columns = ", ".join(f"`{c}`" for c in REQUIRED_COLUMNS)
    lines += ["", f"Columns: {columns}. `observation.image` holds PNG bytes; `action` is {action}.",
              "", "```python", "import datasets",
              f'ds = datasets.load_dataset("parquet", data_files="{SHARD_GLOB}", split="train")', "```", ""]
    path = Path(root) / CARD_FILE
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path
