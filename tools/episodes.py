"""The run log: one folder per episode with ``episode.jsonl``, ``summary.json``, ``video.mp4``.

It lives with the envs that produce it (DESIGN §2) and is read by agents, evals and the
imagination calibration. ``RecordEpisode`` is a gymnasium wrapper, so every env step is recorded
no matter which skill or policy drove it; agent decisions are written into the same log with
:meth:`EpisodeLog.write`.

Why the log stays JSONL and is not the episode dataset (``tools/episode_dataset.py``, parquet):
it is a log, appended and flushed record by record while the run goes, so a killed run keeps
every step before the kill (:func:`tools.io.read_jsonl` drops the torn last line), and it mixes
decision, reflection and step records of different shapes; parquet is written a whole shard at a
time. Where the two overlap they share names: a step record's ``action`` and ``reward`` are the
dataset's :data:`~tools.episode_dataset.ACTION` and :data:`~tools.episode_dataset.REWARD` columns
(here the action's name, which a reader of the log wants; the dataset stores its index).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tools.episode_dataset import ACTION, REWARD
from tools.io import atomic_write_json, read_jsonl

LOG_FILE = "episode.jsonl"
SUMMARY_FILE = "summary.json"
VIDEO_FILE = "video.mp4"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class EpisodeLog:
    """Append-only JSONL log; each record is flushed so a killed run keeps everything before it."""

    def __init__(self, path: str | Path, mode: str = "a") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open(mode, encoding="utf-8")

    def write(self, kind: str, **fields: Any) -> None:
        record = {"type": kind, "time": round(time.time(), 3), **_jsonable(fields)}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Read an episode log; a truncated final line (interrupted write) is dropped, a corrupt line
    before it raises :class:`tools.io.CorruptFileError` naming the line."""
    return read_jsonl(path)


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """A run's JSON file (summary, world, metrics) through :func:`tools.io.atomic_write_json`; numpy values
    from envs and models become plain JSON first."""
    return atomic_write_json(path, _jsonable(data))


class VideoWriter:
    """H.264 mp4 through imageio-ffmpeg (its own ffmpeg binary ships in the wheel)."""

    def __init__(self, path: str | Path, fps: int = 8) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = imageio.get_writer(self.path, fps=fps, codec="libx264", quality=7, macro_block_size=1)
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        self._writer.append_data(np.asarray(frame, dtype=np.uint8))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RecordEpisode(gym.Wrapper):
    """Log every env step to an :class:`EpisodeLog` and every rendered frame to a video.

    Records hold what a reader needs without the env: the action name, reward,
    inventory and newly unlocked achievements (Crafter's ``info`` keys).
    """

    def __init__(self, env: gym.Env, log: EpisodeLog, video: VideoWriter | None = None,
                 action_names: tuple[str, ...] | None = None) -> None:
        super().__init__(env)
        self.log = log
        self.video = video
        self.action_names = action_names
        self.steps = 0
        self.actions: list[int] = []  # replayable trace: seed + actions restore a deterministic world
        self._achievements: dict[str, int] = {}

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._achievements = dict(info.get("achievements", {}))
        self.actions = []
        self.log.write("reset", seed=kwargs.get("seed"), inventory=info.get("inventory", {}))
        self._record_frame()
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.actions.append(int(action))
        achievements = info.get("achievements", {})
        unlocked = sorted(k for k, v in achievements.items() if v > self._achievements.get(k, 0))
        self._achievements = dict(achievements)
        name = self.action_names[int(action)] if self.action_names else action
        self.log.write("step", **{"t": self.steps, ACTION: name, REWARD: float(reward), "terminated": terminated,
                                  "truncated": truncated, "inventory": info.get("inventory", {}), "unlocked": unlocked})
        self._record_frame()
        return obs, reward, terminated, truncated, info

    def _record_frame(self) -> None:
        if self.video is not None:
            self.video.add(self.env.render())
