"""The Crafter env: gymnasium contract, determinism under a seed, text view, accessors."""

import numpy as np
from gymnasium.utils.env_checker import check_env

from tools.envs.crafter import ACTION_NAMES, STATE_FIELDS, CrafterEnv


def test_check_env_passes():
    check_env(CrafterEnv(seed=1), skip_render_check=False)


def test_spaces_and_render():
    env = CrafterEnv()
    obs, info = env.reset(seed=3)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (len(STATE_FIELDS),)
    assert env.action_space.n == len(ACTION_NAMES) == 17
    assert env.render().shape == (256, 256, 3)
    assert info["semantic"].shape == (64, 64)


def _rollout(seed: int, steps: int = 1000):
    env = CrafterEnv()
    env.reset(seed=seed)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(0, 5)))  # noop and moves
        frames.append((obs["image"], obs["state"], info["semantic"], reward))
        if terminated or truncated:
            break
    return frames


def test_same_seed_same_trajectory():
    a, b = _rollout(7), _rollout(7)
    assert len(a) == len(b) and len(a) > 100
    for (ia, sa, ma, ra), (ib, sb, mb, rb) in zip(a, b, strict=True):
        assert (ia == ib).all() and (sa == sb).all() and (ma == mb).all() and ra == rb


def test_describe_mentions_inventory_vitals_and_tree():
    env = CrafterEnv()
    env.reset(seed=3)
    text = env.describe()
    assert "Inventory: empty." in text
    assert "health 9/9" in text and "drink 9/9" in text
    assert "tree" in text and "south-west" in text
    assert env.describe() == text


def test_privileged_accessors():
    env = CrafterEnv()
    env.reset(seed=3)
    assert env.player_pos == (32, 32)
    assert env.inventory["health"] == 9 and set(env.achievements) and env.achievements["collect_wood"] == 0
    assert env.semantic[env.player_pos] == 13  # player id
    assert env.facing in {(0, 1), (0, -1), (1, 0), (-1, 0)}
    assert 0 <= env.daylight <= 1
