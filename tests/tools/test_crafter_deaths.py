"""Deaths in a real Crafter world, each cause set up so it happens on the next step, named by the tracker."""

import numpy as np
from crafter import objects

from agents.episode import run_episode
from agents.rafa import RafaConfig
from tools.envs.crafter import ACTION_NAMES, CrafterEnv

NOOP, RIGHT = ACTION_NAMES.index("noop"), ACTION_NAMES.index("move_right")
EAST = np.array((1, 0))  # the tile to the right of the player; arrows there fly -EAST, at it


def quiet_world(seed: int = 0) -> CrafterEnv:
    """A reset world with nothing alive near the player and plain grass around it, so only our setup can hurt."""
    env = CrafterEnv(seed=seed, length=10_000)
    env.reset()
    world, player = env.world, env.player
    for obj in world.objects:
        if obj is not player and np.abs(obj.pos - player.pos).max() <= 8:
            world.remove(obj)
    px, py = player.pos
    for x in range(px - 3, px + 4):
        for y in range(py - 3, py + 4):
            if (x, y) != (px, py):
                world[(x, y)] = "grass"
    return env


def on_the_brink(env: CrafterEnv, **empty_vitals: int) -> None:
    """Health 1 and the recovery counter one tick from taking it."""
    player = env.player
    player.inventory.update({"health": 1, "food": 9, "drink": 9, "energy": 9, **empty_vitals})
    player._recover = -15
    player._last_health = 1


def test_a_surviving_step_has_no_cause():
    env = quiet_world()
    env.step(NOOP)
    assert env.player.health > 0 and env.death_cause is None


def test_each_empty_vital_is_named():
    for vital, cause in (("drink", "thirst"), ("food", "hunger"), ("energy", "fatigue")):
        env = quiet_world()
        on_the_brink(env, **{vital: 0})
        _, _, terminated, _, _ = env.step(NOOP)
        assert terminated and env.death_cause == cause, vital


def test_several_empty_vitals_blame_the_one_empty_longest():
    env = quiet_world()
    env.player.inventory["food"] = 0  # hunger first, thirst later
    for _ in range(3):
        env.step(NOOP)
    on_the_brink(env, food=0, drink=0)
    env.step(NOOP)
    assert env.death_cause == "hunger"


def test_walking_into_lava():
    env = quiet_world()
    env.player.inventory["health"] = 9
    env.world[tuple(env.player.pos + EAST)] = "lava"
    _, _, terminated, _, _ = env.step(RIGHT)
    assert terminated and env.death_cause == "lava"


def test_a_zombie_next_to_a_sleeper():
    env = quiet_world()
    player = env.player
    player.inventory.update(health=5, energy=3)
    player.sleeping, player._recover, player._last_health = True, 0, 5
    env.world.add(objects.Zombie(env.world, player.pos + EAST, player))
    _, _, terminated, _, _ = env.step(NOOP)
    assert terminated and env.death_cause == "zombie"


def test_an_arrow_is_the_skeleton():
    env = quiet_world()
    player = env.player
    player.inventory["health"] = 2
    player._recover = 0
    env.world.add(objects.Arrow(env.world, player.pos + EAST, -EAST))
    _, _, terminated, _, _ = env.step(NOOP)
    assert terminated and env.death_cause == "skeleton"


def test_the_first_source_in_crafter_update_order_is_the_cause():
    env = quiet_world()
    on_the_brink(env, drink=0)  # the player's own update (thirst) comes before the arrow's
    env.world.add(objects.Arrow(env.world, env.player.pos + EAST, -EAST))
    env.step(NOOP)
    assert env.death_cause == "thirst"


def test_health_dropped_from_outside_is_unknown_and_reset_clears_the_cause():
    env = quiet_world()
    env.player.inventory["health"] = 9
    env.player._recover = 0
    env.player.health = 0  # no source in the world did this
    env.step(NOOP)
    assert env.death_cause == "unknown"
    env.reset()
    assert env.death_cause is None


class ThirstyWorld(CrafterEnv):
    """Crafter whose player starts one step from dying of thirst."""

    def reset(self, **kwargs):
        out = super().reset(**kwargs)
        on_the_brink(self, drink=0)
        return out


def test_the_episode_summary_carries_the_cause(tmp_path):
    died = run_episode("collect wood", seed=0, out_dir=tmp_path / "died", llm=None, video=False,
                       make_env=lambda seed, config: ThirstyWorld(seed=seed, length=config.max_env_steps))
    lived = run_episode("collect wood", seed=0, out_dir=tmp_path / "lived", llm=None, video=False,
                        config=RafaConfig(max_env_steps=30))
    assert died.summary["death_cause"] == "thirst" and died.summary["env_steps"] == 1
    assert "death_cause" in lived.summary and lived.summary["death_cause"] is None
