"""Episode datasets: expert demonstrations round trip through 🤗 datasets; bad input fails clearly."""

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.collect_crafter import collect_crafter
from tools.episode_dataset import (
    ACTION,
    DONE,
    EPISODE_INDEX,
    FRAME_INDEX,
    INSTRUCTION,
    IS_TERMINAL,
    OBS_IMAGE,
    OBS_STATE,
    REQUIRED_COLUMNS,
    SKILL,
    EpisodeBuffer,
    MissingColumnsError,
    decode_png,
    load_episode_dataset,
    write_shard,
)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("crafter-skills")
    return out, collect_crafter(out, episodes=5, seed=0, command="pytest")


def test_round_trip_through_datasets(collected):
    out, report = collected
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert set(REQUIRED_COLUMNS) <= set(ds.column_names)
    assert len(ds) == report.frames and len(set(ds[EPISODE_INDEX])) == report.episodes >= 5
    assert decode_png(ds[0][OBS_IMAGE]).shape == (64, 64, 3) and len(ds[0][OBS_STATE]) == 42
    assert set(ds[INSTRUCTION]) == set(report.counts) and "collect wood" in report.counts
    assert all(0 <= a < 17 for a in ds[ACTION])
    episodes = np.asarray(ds[EPISODE_INDEX])
    for index in np.unique(episodes)[:5]:
        rows = ds.select(np.nonzero(episodes == index)[0])
        assert rows[FRAME_INDEX] == list(range(len(rows)))
        assert rows[DONE] == [False] * (len(rows) - 1) + [True]
    assert "command**: `pytest`" in (out / "README.md").read_text()


def test_rerun_skips_written_worlds(collected):
    out, report = collected
    shard = next((out / "data").glob("*.parquet"))
    mtime = shard.stat().st_mtime_ns
    again = collect_crafter(out, episodes=5, seed=0)
    assert (again.episodes, again.frames, again.counts) == (report.episodes, report.frames, report.counts)
    assert shard.stat().st_mtime_ns == mtime


def test_missing_columns_are_listed(tmp_path):
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({EPISODE_INDEX: [0], INSTRUCTION: ["collect wood"]}), tmp_path / "data" / "x.parquet")
    with pytest.raises(MissingColumnsError, match=r"missing columns \['frame_index', 'observation.image'"):
        load_episode_dataset(tmp_path)


def test_optional_columns_are_written_only_when_every_episode_fills_them(tmp_path):
    obs = {"image": np.zeros((64, 64, 3), np.uint8), "state": np.zeros(42, np.float32)}
    labelled, plain = EpisodeBuffer("a"), EpisodeBuffer("b")
    for t in range(3):
        labelled.add(obs, t, 0.0, skill=t, terminal=t == 2)
        plain.add(obs, t, 0.0)
    write_shard(tmp_path / "both.parquet", [labelled], indices=[42])
    table = pq.read_table(tmp_path / "both.parquet")
    assert table.column(SKILL).to_pylist() == [0, 1, 2] and table.column(IS_TERMINAL).to_pylist() == [0, 0, 1]
    assert table.column(EPISODE_INDEX).to_pylist() == [42] * 3
    write_shard(tmp_path / "mixed.parquet", [labelled, plain])
    assert not {SKILL, IS_TERMINAL} & set(pq.read_schema(tmp_path / "mixed.parquet").names)
    with pytest.raises(ValueError, match="2 episodes but 1 indices"):
        write_shard(tmp_path / "bad.parquet", [labelled, plain], indices=[0])
    assert not (tmp_path / "bad.parquet").exists()
