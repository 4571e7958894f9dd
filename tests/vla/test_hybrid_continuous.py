"""HybridVLA with continuous actions (Meta-World arm): bins, ensemble, learning, save/load, space checks."""

import numpy as np
import pytest
import torch

from tests.vla.training import loss_before_and_after, saved_and_loaded
from tools.collect_metaworld import collect_metaworld
from tools.envs.metaworld import MetaWorldEnv
from vla.base import SpaceMismatchError
from vla.data import load_frames, split_by_episode
from vla.evaluate_metaworld import policy_actor, run_episode
from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.hybrid.continuous import bin_centres, fuse_continuous, to_bins
from vla.skills import METAWORLD_CHECKPOINT
from vla.train import TrainConfig, train, validate

ARM = {"d_model": 32, "n_layers": 1, "n_heads": 2, "dropout": 0.0, "state_dim": 39, "action_space": "continuous",
       "action_dim": 4, "chunk_size": 4, "max_instruction_len": 32}


@pytest.fixture(scope="module")
def arm_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("arm")
    collect_metaworld(root, episodes=2, tasks=["reach"], seed=0)
    return root


@pytest.fixture(scope="module")
def arm_obs():
    env = MetaWorldEnv("reach")
    obs, _ = env.reset(seed=0)
    env.close()
    return obs


def test_bins_round_trip_within_half_a_bin():
    config = HybridConfig(**ARM)
    actions = torch.linspace(-1, 1, 1001)
    centres = bin_centres(to_bins(actions, config, 256), config, 256)
    assert (centres - actions).abs().max() <= 1 / 256 + 1e-6
    assert to_bins(torch.tensor([-5.0, 5.0]), config, 256).tolist() == [0, 255]  # out of range clamps


def test_continuous_ensemble_fuses_only_when_ar_is_confident():
    config = HybridConfig(**{**ARM, "chunk_size": 1, "action_dim": 1})
    confident = torch.zeros(1, 1, 1, 4)
    confident[..., 3] = 0.95  # bin 3 of 4: centre 0.75
    unsure = torch.full((1, 1, 1, 4), 0.25)
    diffusion = torch.full((1, 1, 1), -0.25)
    for probs, expected, fused in ((confident, 0.25, True), (unsure, -0.25, False)):
        _, ensemble, mask = fuse_continuous(probs, diffusion, config, num_bins=4, threshold=0.9)
        assert mask.tolist() == [fused] and ensemble.item() == pytest.approx(expected)


def test_few_steps_lower_the_loss_on_arm_data(arm_dataset):
    before, after = loss_before_and_after(HybridConfig(**ARM), arm_dataset)
    assert after < 0.8 * before


def test_continuous_save_load_round_trip_gives_identical_actions(tmp_path, arm_obs):
    actions = [np.stack([p.act(arm_obs, "reach the goal") for _ in range(6)])  # crosses a chunk edge
               for p in saved_and_loaded(HybridConfig(**ARM), tmp_path)]
    assert actions[0].shape == (6, 4) and actions[0].dtype == np.float32
    assert np.array_equal(*actions) and np.abs(actions[0]).max() <= 1.0


def test_every_mode_returns_its_heads_actions_within_the_configured_bounds(arm_obs):
    """Each mode acts with its own head: AR on bin centres, diffusion its denoised vector, the ensemble
    their mean when fused and the diffusion action otherwise; all inside [action_low, action_high]."""
    batch = {k: np.asarray(v)[None] for k, v in arm_obs.items()}
    bounds = {"action_low": -0.5, "action_high": 0.25}  # not [-1, 1]: a fixed clamp would not do
    chunks = {}
    for mode in ("ensemble", "ar", "diffusion"):
        torch.manual_seed(0)  # the same weights for every mode
        policy = HybridVLAPolicy(HybridConfig(**ARM, **bounds, mode=mode)).eval()
        chunks[mode] = policy.predict_action_chunk(batch, ["reach the goal"])
        assert chunks[mode].shape == (1, 4, 4)
        assert chunks[mode].min() >= -0.5 and chunks[mode].max() <= 0.25
    config = policy.config
    assert torch.allclose(bin_centres(to_bins(chunks["ar"], config, config.num_bins), config, config.num_bins),
                          chunks["ar"])
    policy.reset()
    both = policy.predict_actions(batch, ["reach the goal"])  # the same noise as the lone diffusion head
    assert torch.allclose(both["diffusion"], chunks["diffusion"]) and torch.allclose(both["ar"], chunks["ar"])
    fused = (chunks["ar"] + chunks["diffusion"]) / 2
    assert torch.allclose(chunks["ensemble"], fused if both["fused"][0] else chunks["diffusion"])


def test_action_space_mismatch_names_both(arm_obs):
    env = MetaWorldEnv("reach")
    try:
        with pytest.raises(SpaceMismatchError, match=r"Box.*!= checkpoint num_actions=17 \(Discrete\)"):
            HybridConfig(state_dim=39).check_spaces(env.observation_space, env.action_space)
        with pytest.raises(SpaceMismatchError, match=r"!= checkpoint continuous action_dim=7 \(Box\)"):
            HybridConfig(**{**ARM, "action_dim": 7}).check_spaces(env.observation_space, env.action_space)
    finally:
        env.close()


def test_trainer_refuses_a_policy_whose_actions_differ_from_the_data(arm_dataset, tmp_path):
    discrete = HybridConfig(d_model=32, n_layers=1, n_heads=2, state_dim=39)
    with pytest.raises(SpaceMismatchError, match=r"continuous actions of dim 4 != policy config "
                                                 r"action_space='discrete'"):
        train(TrainConfig(data=str(arm_dataset), out=str(tmp_path), policy=discrete, steps=1, eval_seeds=()))


def test_trainer_on_arm_data_ends_with_a_per_task_eval(arm_dataset, tmp_path):
    cfg = TrainConfig(data=str(arm_dataset), out=str(tmp_path), policy=HybridConfig(**ARM), steps=2, batch_size=8,
                      val_every=2, eval_seeds=(1000,), eval_budget=10)
    metrics = train(cfg)
    assert set(metrics["tasks"]) == {"learned", "expert"} and metrics["tasks"]["expert"]["reach"]["attempts"] == 1
    saved = HybridVLAPolicy.from_pretrained(tmp_path)
    assert saved.config.continuous
    # The recorded validation is the saved policy's on the held-out episodes (the action errors are seeded).
    _, val = split_by_episode(load_frames(str(arm_dataset), saved.config.chunk_size, saved.config.max_instruction_len),
                              cfg.val_every)
    again = validate(saved, val)
    for head in ("ar", "diffusion", "ensemble"):
        assert metrics["validation"][f"action_mse_{head}"] == again[f"action_mse_{head}"] > 0


def test_shipped_checkpoint_closes_the_drawer_on_a_held_out_seed():
    policy = HybridVLAPolicy.from_pretrained(METAWORLD_CHECKPOINT)
    env = MetaWorldEnv("drawer-close", max_steps=150)
    try:
        policy.config.check_spaces(env.observation_space, env.action_space)
        success, steps = run_episode(env, policy_actor(policy, env.instruction), seed=2000)
    finally:
        env.close()
    assert success and steps < 150
