"""Episode datasets: one row per env step, parquet shards readable by 🤗 ``datasets`` (DESIGN §6).

The one dataset format of the project: policies (``vla/data.py``) and the world model
(``world_models/data.py``) read it, every collector behind ``embodia collect`` writes it. The column
names follow LeRobot (``episode_index``, ``frame_index``, ``observation.image``, ...) so the files
read like LeRobot's and other tools can load them; they are the constants below, used by every
writer and reader. Images are stored as PNG bytes (lossless, ~10x smaller than raw 64x64x3).

Optional columns carry what only some readers need: ``skill`` (index into the world model's skill
list, -1 for random actions) and ``is_terminal`` (the world ended at this observation: the player
died) for the world model, ``language_motion`` for RT-H. A world-model episode also keeps its final
observation as a last row with ``action`` = :data:`NO_ACTION` and reward 0: the model must see the
frame a death leads to. Each shard is written whole through :func:`tools.io.atomic_write_bytes`, so
a killed writer never leaves half a shard and a rerun can skip the shards that exist.

This lives beside ``tools/episodes.py`` (the per-run JSONL log) rather than inside it: it is a
different record (training rows, not a run log) and pulls in pyarrow/PIL.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tools.io import atomic_write_bytes, atomic_write_text

EPISODE_INDEX = "episode_index"
FRAME_INDEX = "frame_index"
OBS_IMAGE = "observation.image"
OBS_STATE = "observation.state"
ACTION = "action"
INSTRUCTION = "instruction"
REWARD = "reward"
DONE = "done"
SKILL = "skill"
IS_TERMINAL = "is_terminal"
LANGUAGE_MOTION = "language_motion"
#: Every episode dataset has these columns; readers check them with :func:`check_columns`.
REQUIRED_COLUMNS: tuple[str, ...] = (
    EPISODE_INDEX, FRAME_INDEX, OBS_IMAGE, OBS_STATE, ACTION, INSTRUCTION, REWARD, DONE,
)
#: Written when every episode of a shard carries them; readers ask for them with ``optional=``.
OPTIONAL_COLUMNS: tuple[str, ...] = (SKILL, IS_TERMINAL, LANGUAGE_MOTION)
#: The ``action`` of a row that records an observation no action followed (a world-model episode's end).
NO_ACTION = -1
SHARD_GLOB = "data/*.parquet"
CARD_FILE = "README.md"


class MissingColumnsError(ValueError):
    """A dataset lacks columns a reader needs; the message lists them."""


@dataclass
class EpisodeBuffer:
    """The steps of one episode as they happen: the observation *before* each action.

    ``reward`` is what the action earned; ``done`` marks the episode's last row. An action is an
    index (discrete envs: stored as int64) or a vector (continuous envs: stored as a float32 list).
    ``skills``, ``terminals`` and ``motions`` fill the optional columns when given for every step.
    """

    instruction: str
    images: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[int | np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    skills: list[int] = field(default_factory=list)
    terminals: list[bool] = field(default_factory=list)
    motions: list[str] = field(default_factory=list)

    def add(self, obs: dict[str, np.ndarray], action: int | np.ndarray, reward: float, *, skill: int | None = None,
            terminal: bool | None = None, motion: str | None = None) -> None:
        self.images.append(np.asarray(obs["image"], np.uint8))
        self.states.append(np.asarray(obs["state"], np.float32))
        value = np.asarray(action)
        discrete = value.ndim == 0 and np.issubdtype(value.dtype, np.integer)
        self.actions.append(int(value) if discrete else np.atleast_1d(value).astype(np.float32))
        self.rewards.append(float(reward))
        for values, extra in ((self.skills, skill), (self.terminals, terminal), (self.motions, motion)):
            if extra is not None:
                values.append(extra)

    def optional(self) -> dict[str, list]:
        """The optional columns this episode fills for every step."""
        columns = {SKILL: self.skills, IS_TERMINAL: self.terminals, LANGUAGE_MOTION: self.motions}
        return {name: values for name, values in columns.items() if values and len(values) == len(self)}

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


def write_shard(path: str | Path, episodes: Sequence[EpisodeBuffer], first_episode_index: int = 0, *,
                indices: Sequence[int] | None = None) -> int:
    """Write ``episodes`` as one parquet file atomically; returns rows written.

    Episodes are numbered from ``first_episode_index``, or by ``indices`` (e.g. their world seeds, which
    keep episode indices unique when shards of several collections share a folder). ``action`` is int64 for
    discrete episodes and a float32 list for continuous ones (LeRobot's layout). An optional column is
    written when every non-empty episode fills it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    numbers = list(indices) if indices is not None else [first_episode_index + i for i in range(len(episodes))]
    if len(numbers) != len(episodes):
        raise ValueError(f"write_shard: {len(episodes)} episodes but {len(numbers)} indices")
    filled = [e for e in episodes if len(e)]
    optional = [c for c in OPTIONAL_COLUMNS if filled and all(c in e.optional() for e in filled)]
    columns: dict[str, list[Any]] = {name: [] for name in (*REQUIRED_COLUMNS, *optional)}
    for number, episode in zip(numbers, episodes, strict=True):
        n = len(episode)
        columns[EPISODE_INDEX] += [number] * n
        columns[FRAME_INDEX] += list(range(n))
        columns[OBS_IMAGE] += [encode_png(image) for image in episode.images]
        columns[OBS_STATE] += [state.tolist() for state in episode.states]
        columns[ACTION] += [a.tolist() if isinstance(a, np.ndarray) else a for a in episode.actions]
        columns[INSTRUCTION] += [episode.instruction] * n
        columns[REWARD] += episode.rewards
        columns[DONE] += [i == n - 1 for i in range(n)]
        extras = episode.optional()
        for name in optional:
            columns[name] += extras.get(name, [])
    continuous = any(isinstance(e.actions[0], np.ndarray) for e in filled)
    types = {SKILL: pa.int64(), IS_TERMINAL: pa.bool_(), LANGUAGE_MOTION: pa.string()}
    schema = pa.schema([
        (EPISODE_INDEX, pa.int64()), (FRAME_INDEX, pa.int64()), (OBS_IMAGE, pa.binary()),
        (OBS_STATE, pa.list_(pa.float32())), (ACTION, pa.list_(pa.float32()) if continuous else pa.int64()),
        (INSTRUCTION, pa.string()),
        (REWARD, pa.float32()), (DONE, pa.bool_()), *((name, types[name]) for name in optional),
    ])
    table = pa.table(columns, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
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


def load_episode_dataset(root: str | Path, columns: Sequence[str] | None = None, optional: Sequence[str] = ()):
    """Load the shards under ``root`` as a 🤗 ``datasets.Dataset`` after checking the columns.

    With ``columns`` only those are kept, plus each of ``optional`` the shards have (a reader that can do
    without them checks ``column_names``).
    """
    import datasets
    import pyarrow.parquet as pq

    files = shard_files(root)
    names = pq.read_schema(files[0]).names
    check_columns(names, columns or REQUIRED_COLUMNS, where=str(root))
    dataset = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    if not columns:
        return dataset
    return dataset.select_columns([*columns, *(c for c in optional if c in names and c not in columns)])


def write_dataset_card(root: str | Path, title: str, facts: dict[str, Any], counts: dict[str, int],
                       action: str = "the env's action index") -> Path:
    """A short README (env, seeds, counts, command) so the folder explains itself; ``action`` says what
    the ``action`` column holds."""
    lines = [f"# {title}", "", "Written by embodia: parquet shards under `data/`, one row per step.", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items()]
    lines += ["", "| instruction | episodes |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in sorted(counts.items())]
    columns = ", ".join(f"`{c}`" for c in REQUIRED_COLUMNS)
    lines += ["", f"Columns: {columns} (and, where written, {', '.join(f'`{c}`' for c in OPTIONAL_COLUMNS)}). "
              f"`observation.image` holds PNG bytes; `action` is {action}.",
              "", "```python", "import datasets",
              f'ds = datasets.load_dataset("parquet", data_files="{SHARD_GLOB}", split="train")', "```", ""]
    return atomic_write_text(Path(root) / CARD_FILE, "\n".join(lines))
