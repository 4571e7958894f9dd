"""The episode record: every env step logged, frames in the video, logs that survive a killed writer."""

import json
import os

import imageio.v2 as imageio
import numpy as np
import pytest

from tools.envs.crafter import ACTION_NAMES, CrafterEnv
from tools.episode_dataset import ACTION, REWARD
from tools.episodes import EpisodeLog, RecordEpisode, VideoWriter, read_log, write_json_atomic
from tools.io import CorruptFileError


def test_record_episode_logs_steps_and_frames(tmp_path):
    log = EpisodeLog(tmp_path / "episode.jsonl")
    video = VideoWriter(tmp_path / "video.mp4")
    env = RecordEpisode(CrafterEnv(seed=0), log, video, ACTION_NAMES)
    env.reset(seed=0)
    for action in (1, 2, 5, 5):
        env.step(action)
    video.close()
    log.close()
    records = read_log(tmp_path / "episode.jsonl")
    assert [r["type"] for r in records] == ["reset", "step", "step", "step", "step"]
    assert [r["action"] for r in records[1:]] == ["move_left", "move_right", "do", "do"]
    assert env.actions == [1, 2, 5, 5]
    assert sum(1 for _ in imageio.get_reader(tmp_path / "video.mp4")) == 5


def test_truncated_last_line_is_dropped_but_corruption_inside_is_an_error(tmp_path):
    path = tmp_path / "episode.jsonl"
    path.write_text('{"type": "step"}\n{"type": "st')
    assert read_log(path) == [{"type": "step"}]
    path.write_text('{"type": "st\n{"type": "step"}\n')
    with pytest.raises(CorruptFileError, match=":1: corrupt"):
        read_log(path)


def test_json_written_atomically_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = write_json_atomic(tmp_path / "summary.json", {"success": True, "steps": np.int64(3)})
    assert json.loads(path.read_text()) == {"success": True, "steps": 3}  # numpy values written as JSON

    def disk_error(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_error)  # the disk fails while the new version is being written
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(path, {"success": False})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"success": True, "steps": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left behind


def test_step_records_share_the_dataset_column_names(tmp_path):
    log = EpisodeLog(tmp_path / "episode.jsonl")
    env = RecordEpisode(CrafterEnv(seed=0), log, None, ACTION_NAMES)
    env.reset(seed=0)
    env.step(5)
    log.close()
    step = read_log(tmp_path / "episode.jsonl")[-1]
    assert step[ACTION] == "do" and isinstance(step[REWARD], float)
