"""World model on real Crafter episodes: shapes, learning, determinism, checkpoints, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.envs.crafter import ITEM_NAMES
from tools.skills.crafter import SKILLS
from world_models.config import RSSMConfig, preset
from world_models.data import SKILL_NAMES, CollectConfig, SequenceSampler, collect_episode, load_episodes, write_shard
from world_models.env import WorldModelEnv
from world_models.rssm import RSSMWorldModel, load_world_model
from world_models.train import NonFiniteLossError, TrainConfig, train

SHIPPED = Path(__file__).resolve().parents[2] / "world_models/checkpoints/rssm-crafter-tiny"
#: Small enough that a CPU update takes well under a second.
MICRO = {"deter": 32, "stoch": 4, "classes": 4, "hidden": 16, "blocks": 2, "depth": 4, "seq_len": 8}


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    cfg = CollectConfig(out=tmp_path_factory.mktemp("episodes"), steps=40)
    return [collect_episode(seed, cfg) for seed in (10_000, 10_001)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, episodes: list[dict[str, np.ndarray]]) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    write_shard(folder / "data" / "shard-10000.parquet", episodes, [10_000, 10_001], "test episodes")
    return folder


def micro(**overrides) -> RSSMWorldModel:
    torch.manual_seed(0)
    return RSSMWorldModel(preset("tiny", skills=SKILL_NAMES, **{**MICRO, **overrides}))


def test_collected_episodes_are_real_and_round_trip(episodes, shards) -> None:
    loaded = load_episodes(shards)
    assert len(loaded) == 2
    for original, back in zip(episodes, loaded, strict=True):
        assert back["image"].shape[1:] == (64, 64, 3) and back["image"].dtype == np.uint8
        assert all(np.array_equal(original[k], back[k]) for k in original)
        assert back["is_first"][0] and not back["is_first"][1:].any()
        assert (back["skill"] >= 0).any(), "the expert drove some steps"


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_encoder_decoder_and_rollout_shapes(episodes, kind) -> None:
    model = micro(action_kind=kind, action_dim=17 if kind == "discrete" else 3)
    batch = SequenceSampler(episodes, 8, seed=0).sample(2)
    if kind == "continuous":
        batch["prev_action"] = torch.rand(2, 8, 3) * 2 - 1
    embed = model.encoder(batch["image"], batch["state"])
    assert embed.shape == (2, 8, model.encoder.outputs)
    carry, post, prior = model.observe(model.initial(2), batch["image"], batch["state"], batch["prev_action"],
                                       batch["is_first"])
    assert post.deter.shape == (2, 8, 32) and post.stoch.shape == (2, 8, 4, 4) and prior.shape == (2, 8, 4, 4)
    assert model.decoder(post.feat()).shape == (2, 8, 64, 64, 3)
    actions = torch.randint(0, 17, (2, 5)) if kind == "discrete" else torch.rand(2, 5, 3)
    _, imagined = model.imagine(carry, actions)
    pred = model.predict(imagined)
    assert pred["image"].shape == (2, 5, 64, 64, 3) and pred["state"].shape == (2, 5, 42)


def test_a_few_updates_lower_the_loss(episodes) -> None:
    model = micro()
    batch = SequenceSampler(episodes, 8, seed=0).sample(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss, metrics = model(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    assert losses[-1] < 0.8 * losses[0], losses


def test_imagined_rollouts_are_deterministic_under_a_seed(episodes) -> None:
    model = micro().eval()
    obs = {"image": episodes[0]["image"][:6], "state": episodes[0]["state"][:6]}
    runs = []
    for _ in range(2):
        world = WorldModelEnv(model, seed=7)
        world.reset_from(obs, episodes[0]["action"][:5], batch_size=16)
        frames = [world.step(np.arange(16) % 17)[0]["image"] for _ in range(4)]
        runs.append(np.stack(frames))
    assert runs[0].shape == (4, 16, 64, 64, 3)
    assert np.array_equal(runs[0], runs[1])
    other = WorldModelEnv(model, seed=8)
    other.reset_from(obs, episodes[0]["action"][:5], batch_size=16)
    assert not np.array_equal(np.stack([other.step(np.arange(16) % 17)[0]["image"] for _ in range(4)]), runs[0])


def test_rollout_past_the_trained_horizon_warns(episodes, caplog) -> None:
    world = WorldModelEnv(micro(), render=False)
    world.reset_from({"image": episodes[0]["image"][:1], "state": episodes[0]["state"][:1]}, np.zeros(0, int))
    with caplog.at_level("WARNING"):
        for _ in range(MICRO["seq_len"] + 1):
            world.step(np.zeros(1, int))
    assert "past the 8-step sequences" in caplog.text


def test_save_load_round_trip_and_wrong_world(tmp_path, episodes) -> None:
    model = micro().eval()
    model.save_pretrained(tmp_path / "wm")
    assert {p.name for p in (tmp_path / "wm").iterdir()} >= {"config.json", "model.safetensors"}
    loaded = load_world_model(tmp_path / "wm", expect=model.config)
    assert loaded.config == model.config
    batch = SequenceSampler(episodes, 8, seed=0).sample(2)
    torch.manual_seed(1)
    a = model(batch)[1]
    torch.manual_seed(1)
    b = loaded(batch)[1]
    assert a == b
    other = replace(RSSMConfig(), image_size=96, action_dim=5)
    with pytest.raises(ValueError, match=r"image_size=64 vs 96.*action_dim=17 vs 5"):
        load_world_model(tmp_path / "wm", expect=other)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="deter must be divisible"):
        RSSMConfig(deter=30, blocks=4)
    with pytest.raises(ValueError, match="unknown world-model preset"):
        preset("huge")


def test_train_resumes_and_stops_on_nan_keeping_the_last_good_checkpoint(tmp_path, shards, episodes) -> None:
    cfg = TrainConfig(data=shards, out=tmp_path / "run", steps=2, batch_size=2, seq_len=8, checkpoint_every=1)
    import world_models.config as config_module

    small = replace(config_module.PRESETS["tiny"], **MICRO)
    config_module.PRESETS["micro"] = small
    try:
        train(replace(cfg, preset="micro"))
        assert (tmp_path / "run" / "checkpoint" / "model.safetensors").exists()
        train(replace(cfg, preset="micro", steps=3, resume=True, lr=1e-4))  # a second stage at a lower rate
        trainer = json.loads((tmp_path / "run" / "checkpoint" / "train_state.json").read_text())
        assert trainer["step"] == 3 and trainer["param_groups"][0]["lr"] == 1e-4
        bad = tmp_path / "bad"
        bad.mkdir()
        poisoned = [dict(e, state=np.full_like(e["state"], np.nan)) for e in episodes]
        write_shard(bad / "data" / "shard-10000.parquet", poisoned, [10_000, 10_001], "poisoned")
        with pytest.raises(NonFiniteLossError, match=r"update 4.*\(update 3\)"):
            train(replace(cfg, preset="micro", data=bad, steps=5, resume=True))
        assert '"step": 3' in (tmp_path / "run" / "checkpoint" / "train_state.json").read_text()
    finally:
        del config_module.PRESETS["micro"]


def test_agent_driven_collection_labels_each_step_with_the_agents_skill(tmp_path) -> None:
    from agents.collect import drive_with_agent

    episode = collect_episode(11_000, CollectConfig(out=tmp_path, steps=80, driver="agent"), drive_with_agent)
    assert len(episode["action"]) == 81 and episode["image"].shape == (81, 64, 64, 3)
    used = {SKILL_NAMES[i] for i in episode["skill"] if i >= 0}
    assert "collect wood" in used  # the open-ended order starts with the tech tree
    assert (episode["action"][:-1] >= 0).all()
    with pytest.raises(ValueError, match="driver"):
        CollectConfig(out=tmp_path, driver="oracle")


def test_blind_collection_records_attempts_whose_requirements_were_missing(tmp_path) -> None:
    episode = collect_episode(12_000, CollectConfig(out=tmp_path, steps=120, blind=1.0, random_burst=0.0,
                                                    epsilon=0.0, blind_budget=5))
    inventory = dict(zip(ITEM_NAMES, episode["state"][:, : len(ITEM_NAMES)].T, strict=True))
    attempted = [SKILL_NAMES[s] for s in episode["skill"][:-1] if s >= 0]
    assert attempted, "blind=1.0 attempts a skill the player cannot do yet at every step"
    for t, s in enumerate(episode["skill"][:-1]):
        requires = SKILLS[SKILL_NAMES[s]].requires
        if t == 0 or episode["skill"][t - 1] != s:  # the start of an attempt
            assert any(inventory[k][t] < n for k, n in requires.items()), (t, SKILL_NAMES[s])
    with pytest.raises(ValueError, match="probabilities"):
        CollectConfig(out=tmp_path, blind=1.5)
    with pytest.raises(ValueError, match="needs driver 'mix'"):
        CollectConfig(out=tmp_path, blind=0.1, driver="agent")


def test_open_loop_bench_scores_one_rollout_and_the_expected_frame(episodes) -> None:
    from evals.bench_world_model import open_loop

    model = load_world_model(SHIPPED)
    one = open_loop(model, episodes, context=4, horizon=5, stride=10, samples=1)
    assert one["mse"].shape == one["mse_mean"].shape == one["baseline"].shape == (len(one["mse"]), 5)
    np.testing.assert_allclose(one["mse_mean"], one["mse"], rtol=1e-5)  # the mean of one rollout is that rollout
    np.testing.assert_array_equal(one["pred_delta_expected"], one["pred_delta_own"])
    many = open_loop(model, episodes, context=4, horizon=5, stride=10, samples=8)
    assert (many["mse"] > 0).all() and (many["baseline"] >= 0).all()
    assert not np.allclose(many["mse_mean"], many["mse"])  # eight rollouts differ from the first alone
    assert many["ssim"].shape == many["ssim_baseline"].shape == many["mse"].shape
    assert ((many["ssim"] < 1) & (many["ssim"] > -1)).all()
    np.testing.assert_allclose(one["ssim_mean"], one["ssim"], rtol=1e-5)
    windows = len(many["mse"])
    assert many["return"].shape == many["return_expected"].shape == many["return_real"].shape == (windows,)
    np.testing.assert_allclose(one["return_expected"], one["return"], rtol=1e-5)


def test_counting_probe_imagines_a_table_from_real_wood_in_hand() -> None:
    from evals.bench_world_model import place_table_by_wood

    model = load_world_model(SHIPPED)
    probe = place_table_by_wood(model, worlds=range(1, 3))
    assert [len(probe["by_wood"][n]) for n in "0123"] == [2, 2, 2, 2]  # both worlds have trees next to the start
    assert probe["mean_by_wood"]["0"] < 0.05 < probe["mean_by_wood"]["2"]  # no wood: no table; two: likely
    one, two = probe["by_wood"]["1"], probe["by_wood"]["2"]
    vetoed_then_allowed = [p1 <= probe["veto"] < p2 for p1, p2 in zip(one, two, strict=True)]
    assert probe["told_apart"] == pytest.approx(np.mean(vetoed_then_allowed))


def test_ssim_is_one_for_identical_frames_and_falls_with_noise_and_shift() -> None:
    from world_models.metrics import ssim

    frames = np.random.default_rng(0).random((3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(ssim(frames, frames), 1.0, atol=1e-5)
    noisy = np.clip(frames + np.random.default_rng(1).normal(0, 0.2, frames.shape), 0, 1).astype(np.float32)
    shifted = np.roll(frames, 8, axis=2)
    assert (ssim(frames, noisy) < 0.9).all() and (ssim(frames, shifted) < ssim(frames, noisy)).all()
    with pytest.raises(ValueError, match="one shape"):
        ssim(frames, frames[:, :32])
