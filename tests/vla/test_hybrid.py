"""HybridVLA: training lowers the loss on real data, save/load keeps actions, the ensemble follows confidence."""

import numpy as np
import pytest
import torch

from tests.vla.training import loss_before_and_after, saved_and_loaded
from tools.envs.crafter import CrafterEnv
from vla.hybrid import HybridConfig, HybridVLAPolicy, collaborative_ensemble

TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2, "dropout": 0.0}


@pytest.fixture(scope="module")
def obs():
    return CrafterEnv(seed=0).reset(seed=0)[0]


def test_few_steps_lower_the_loss_on_collected_data(tiny_dataset):
    before, after = loss_before_and_after(HybridConfig(**TINY), tiny_dataset)
    assert after < 0.8 * before


def test_save_load_round_trip_gives_identical_actions(tmp_path, obs):
    policy, loaded = saved_and_loaded(HybridConfig(**TINY), tmp_path)
    assert [policy.act(obs, "collect wood") for _ in range(5)] == [loaded.act(obs, "collect wood") for _ in range(5)]


def test_ensemble_fuses_only_when_ar_is_confident():
    diffusion = torch.tensor([[[0.2, 0.8]], [[0.2, 0.8]]])  # (B=2, H=1, A=2)
    ar = torch.tensor([[[0.95, 0.05]], [[0.6, 0.4]]])
    probs, fused = collaborative_ensemble(ar, diffusion, threshold=0.9)
    assert fused.tolist() == [True, False]
    assert torch.allclose(probs[0], (ar[0] + diffusion[0]) / 2) and torch.equal(probs[1], diffusion[1])


def test_real_model_ensemble_follows_its_threshold(obs):
    torch.manual_seed(0)
    batch = {k: np.asarray(v)[None] for k, v in obs.items()}
    outputs = {}
    for threshold in (0.0, 1.01):  # always fuse / never fuse
        policy = HybridVLAPolicy(HybridConfig(**TINY, ensemble_threshold=threshold)).eval()
        policy.load_state_dict(outputs.get("weights", policy.state_dict()))
        outputs["weights"] = policy.state_dict()
        policy.reset()
        outputs[threshold] = policy.predict_probs(batch, ["collect wood"])
    always, never = outputs[0.0], outputs[1.01]
    assert always["fused"].all() and not never["fused"].any()
    assert torch.allclose(always["ensemble"], (always["ar"] + always["diffusion"]) / 2)
    assert torch.equal(never["ensemble"], never["diffusion"])
