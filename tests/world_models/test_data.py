"""World-model data in the project's one episode dataset format: collect for real, read back, sample, train."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from embodia.cli import app
from tools.collect_crafter import run_chain
from tools.episode_dataset import (
    ACTION,
    EPISODE_INDEX,
    IS_TERMINAL,
    NO_ACTION,
    REQUIRED_COLUMNS,
    REWARD,
    SKILL,
    write_shard,
)
from world_models.config import preset
from world_models.data import (
    SKILL_NAMES,
    CollectConfig,
    SequenceSampler,
    collect,
    collect_episode,
    load_episodes,
)
from world_models.data import write_shard as write_frames
from world_models.rssm import RSSMWorldModel

MICRO = {"deter": 32, "stoch": 4, "classes": 4, "hidden": 16, "blocks": 2, "depth": 4, "seq_len": 8}
SEEDS = (10_000, 10_001)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[CollectConfig, list[Path]]:
    cfg = CollectConfig(out=tmp_path_factory.mktemp("wm-data"), episodes=2, steps=30, seed=SEEDS[0])
    return cfg, collect(cfg)


def test_collected_shards_read_back_as_the_episodes_the_collector_played(collected) -> None:
    cfg, paths = collected
    assert [p.relative_to(cfg.out).as_posix() for p in paths] == ["data/shard-10000.parquet"]
    episodes = load_episodes(cfg.out)
    assert len(episodes) == 2
    for seed, back in zip(SEEDS, episodes, strict=True):
        played = collect_episode(seed, cfg)  # deterministic given the seed: the same episode again
        assert played.keys() == back.keys()
        for key, value in played.items():
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
        assert back["action"][-1] == -1 and (back["action"][:-1] >= 0).all()  # the final frame has no action
        assert (back["skill"] >= 0).any(), "the scripted skills drove some steps"


def test_the_shards_are_a_lerobot_style_dataset_with_the_world_models_columns(collected) -> None:
    cfg, paths = collected
    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in paths], split="train")
    assert set(REQUIRED_COLUMNS) | {SKILL, IS_TERMINAL} <= set(ds.column_names)
    assert sorted(set(ds[EPISODE_INDEX])) == list(SEEDS)  # episode index = world seed: merged folders stay unique
    rows = ds.filter(lambda row: row[EPISODE_INDEX] == SEEDS[0])
    frames = load_episodes(cfg.out)[0]
    assert rows[ACTION][-1] == NO_ACTION
    np.testing.assert_array_equal(np.asarray(rows[REWARD][:-1], np.float32), frames["reward"][1:])  # row = earned
    assert all(-1 <= s < len(SKILL_NAMES) for s in rows[SKILL])
    assert "world-model" in (cfg.out / "README.md").read_text()


def test_rerun_keeps_written_shards(collected) -> None:
    cfg, paths = collected
    mtime = paths[0].stat().st_mtime_ns
    assert collect(cfg) == paths
    assert paths[0].stat().st_mtime_ns == mtime


def test_a_terminal_frame_survives_the_round_trip(tmp_path, collected) -> None:
    cfg, _ = collected
    episode = load_episodes(cfg.out)[0]
    episode["is_terminal"][-1] = True  # as a death leaves it
    write_frames(tmp_path / "data" / "shard-0.parquet", [episode], [7], "died")
    back = load_episodes(tmp_path)[0]
    assert back["is_terminal"][-1] and not back["is_terminal"][:-1].any()


def test_sequences_sampled_from_the_dataset_train_a_tiny_world_model(collected) -> None:
    cfg, _ = collected
    sampler = SequenceSampler(load_episodes(cfg.out), MICRO["seq_len"], seed=0)
    batch = sampler.sample(2)
    assert batch["image"].shape == (2, 8, 64, 64, 3) and batch["image"].dtype == torch.uint8
    assert batch["is_first"][:, 0].all() and (batch["prev_action"][:, 0] == -1).all()
    torch.manual_seed(0)
    model = RSSMWorldModel(preset("tiny", skills=SKILL_NAMES, **MICRO))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss, metrics = model(batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert np.isfinite(metrics["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_expert_demonstrations_read_as_frames_without_skill_labels(tmp_path) -> None:
    recorded, _ = run_chain(0, ("collect wood", "collect wood"))
    write_shard(tmp_path / "data" / "seed-000000.parquet", recorded)
    episodes = load_episodes(tmp_path)
    assert [len(e["action"]) for e in episodes] == [len(r) for r in recorded]
    assert all((e["skill"] == -1).all() and not e["is_terminal"].any() for e in episodes)
    assert all(e["reward"][0] == 0 and (e["action"] >= 0).all() for e in episodes)


def test_the_agent_driver_must_be_passed_in_and_old_npz_folders_are_named(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"agents\.collect\.drive_with_agent"):
        collect_episode(11_000, CollectConfig(out=tmp_path, steps=10, driver="agent"))
    (tmp_path / "shard-10000.npz").write_bytes(b"old")
    with pytest.raises(FileNotFoundError, match="embodia collect --for world-model"):
        load_episodes(tmp_path)


def test_embodia_collect_for_the_world_model(tmp_path) -> None:
    out = tmp_path / "wm"
    result = CliRunner().invoke(app, ["collect", "--for", "world-model", "--episodes", "1", "--steps", "12",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [len(e["action"]) for e in load_episodes(out)] == [13]
    for args, hint in ((["--for", "world-model", "--env", "metaworld"], "Crafter"),
                       (["--for", "world-model", "--driver", "oracle"], "driver"),
                       (["--for", "planner"], "purpose")):
        bad = CliRunner().invoke(app, ["collect", *args, "--out", str(tmp_path / "bad")])
        assert bad.exit_code == 2 and hint in bad.output, bad.output
    assert not (tmp_path / "bad").exists()
