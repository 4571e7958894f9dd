"""Bad input fails with messages that name what is wrong: shapes, action spaces, broken checkpoint files."""

import gymnasium
import numpy as np
import pytest

from tools.envs.crafter import CrafterEnv
from vla.base import CheckpointError, SpaceMismatchError
from vla.hybrid import HybridVLAPolicy


def test_observation_shape_mismatch_names_both(checkpoint):
    policy = HybridVLAPolicy.from_pretrained(checkpoint)
    obs = {"image": np.zeros((96, 96, 3), np.uint8), "state": np.zeros(42, np.float32)}
    with pytest.raises(SpaceMismatchError, match=r"\(96, 96, 3\).*\(64, 64, 3\)"):
        policy.act(obs, "collect wood")


def test_action_space_mismatch_names_both(checkpoint):
    config = HybridVLAPolicy.from_pretrained(checkpoint).config
    env = CrafterEnv(seed=0)
    config.check_spaces(env.observation_space, env.action_space)
    with pytest.raises(SpaceMismatchError, match=r"Discrete\(5\).*num_actions=17"):
        config.check_spaces(env.observation_space, gymnasium.spaces.Discrete(5))


def test_truncated_weights_name_the_file(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        HybridVLAPolicy.from_pretrained(checkpoint)


def test_corrupt_config_names_the_file(checkpoint):
    (checkpoint / "config.json").write_text('{"d_model": 32, "n_la')
    with pytest.raises(CheckpointError, match=r"config\.json"):
        HybridVLAPolicy.from_pretrained(checkpoint)


def test_weights_from_another_config_name_both_files(checkpoint):
    (checkpoint / "config.json").write_text('{"d_model": 48, "n_layers": 1, "n_heads": 2}')
    with pytest.raises(CheckpointError, match=r"model.safetensors.*config.json"):
        HybridVLAPolicy.from_pretrained(checkpoint)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        HybridVLAPolicy.from_pretrained(tmp_path)
