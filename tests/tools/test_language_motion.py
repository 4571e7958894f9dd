"""Language motions derived from real Crafter steps and real Meta-World expert actions (tools.language_motion)."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tools.collect_crafter import RecordSteps
from tools.envs.crafter import ACTION_NAMES, STATE_FIELDS, CrafterEnv
from tools.episode_dataset import LANGUAGE_MOTION, EpisodeBuffer, write_shard
from tools.language_motion import (
    CRAFTER_MOTIONS,
    MOVES,
    closest_motions,
    crafter_motion_from_frame,
    crafter_motion_in_env,
    crafter_target,
    fill_language_motion,
    metaworld_motion,
    metaworld_motions,
)
from tools.skills.crafter import run_skill

DAYLIGHT = STATE_FIELDS.index("daylight")


def test_crafter_moves_are_move_or_face_as_the_world_then_does():
    """Each phrase is checked against what the real env did: 'move' moved the player, 'face the X' only turned
    it toward X; the other primitives name themselves."""
    env = CrafterEnv(seed=4)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(400):
        action = int(rng.choice([1, 2, 3, 4, 5, 0]))
        name = ACTION_NAMES[action]
        phrase = crafter_motion_in_env(env, action)
        assert phrase in CRAFTER_MOTIONS
        before = env.player.pos.copy()
        target = crafter_target(env, MOVES[name]) if name in MOVES else ""
        _, _, terminated, _, _ = env.step(action)
        if name in MOVES:
            moved = not np.array_equal(env.player.pos, before)
            assert phrase == (f"move {name[5:]}" if moved else f"face the {target}"), (phrase, moved, target)
            assert tuple(env.player.facing) == MOVES[name]
            seen.add("move" if moved else "face")
        else:
            assert phrase == {"noop": "noop", "do": "do"}[name]
            seen.add(phrase)
        if terminated:
            break
    assert {"move", "face", "do", "noop"} <= seen


def test_collecting_wood_moves_faces_the_tree_and_does():
    """The collector's phrases for real expert skill calls: moves and turns, ending with 'do'."""
    env = RecordSteps(CrafterEnv(seed=0))
    env.reset(seed=0)
    phrases = []
    for _ in range(5):
        env.buffer = EpisodeBuffer("collect wood")
        assert run_skill(env, "collect wood").ok
        motions = env.buffer.motions
        assert len(motions) == len(env.buffer) and motions[-1] == "do"
        assert all(m.startswith("move ") or m in ("face the tree", "do", "noop") for m in motions), motions
        phrases += motions
    assert {"move up", "move left"} <= set(phrases)


def test_frames_give_the_same_motions_as_the_world_day_and_night(tmp_path):
    """The frame-read phrase (what fills an existing dataset) equals the world-read one on real steps, and
    fill_language_motion writes exactly those into a shard that lacked the column."""
    env = CrafterEnv(seed=1)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    buffer, truth, lights = EpisodeBuffer("wander"), [], []
    for _ in range(700):  # crafter's day lasts 300 steps: this crosses a night
        action = int(rng.choice([1, 2, 3, 4, 5]))
        truth.append(crafter_motion_in_env(env, action))
        assert crafter_motion_from_frame(obs["image"], action, float(obs["state"][DAYLIGHT])) == truth[-1]
        lights.append(float(obs["state"][DAYLIGHT]))
        buffer.add(obs, action, 0.0)
        obs, _, terminated, _, _ = env.step(action)
        if terminated:
            break
    assert min(lights) < 0.5  # night frames were among them
    write_shard(tmp_path / "data" / "seed-000001.parquet", [buffer])
    assert fill_language_motion(tmp_path) == len(truth)
    assert pq.read_table(tmp_path / "data" / "seed-000001.parquet").column(LANGUAGE_MOTION).to_pylist() == truth


def test_metaworld_phrases_name_dominant_axes_and_gripper_changes():
    assert metaworld_motion([0.1, 0.8, 0.0, 1.0], [0.0, 0.0, 0.0, -1.0]) == "move arm forward and close gripper"
    assert metaworld_motion([-0.6, 0.0, 0.5, -1.0]) == "move arm left and up"
    assert metaworld_motion([0.05, -0.1, 0.0, -1.0]) == "hold still"
    assert metaworld_motion([0.0, 0.0, -0.9, -1.0], [0.0, 0.0, 0.0, 1.0]) == "move arm down and open gripper"


def test_metaworld_motions_from_real_expert_actions():
    pytest.importorskip("metaworld", reason="Meta-World is the optional extra embodia[metaworld]")
    from tools.envs.metaworld import MetaWorldEnv, ScriptedExpert

    env, expert = MetaWorldEnv("push", max_steps=150), ScriptedExpert("push")
    try:
        obs, _ = env.reset(seed=0)
        actions = []
        for _ in range(150):
            actions.append(expert(obs))
            obs, _, terminated, truncated, _ = env.step(actions[-1])
            if terminated or truncated:
                break
    finally:
        env.close()
    motions = metaworld_motions(actions)
    flips = [i for i in range(len(actions)) if (actions[i][3] > 0) != ((actions[i - 1][3] if i else -1.0) > 0)]
    assert [i for i, m in enumerate(motions) if "gripper" in m] == flips  # a grasp or release is one phrase
    for action, motion in zip(actions, motions, strict=True):
        axis = int(np.argmax(np.abs(action[:3])))
        if abs(action[axis]) >= 0.2:  # the dominant axis leads the phrase
            word = (("left", "right"), ("backward", "forward"), ("down", "up"))[axis][int(action[axis] > 0)]
            assert motion.startswith(f"move arm {word}"), (action, motion)
    assert len(set(motions)) > 3


def test_closest_motions_offer_the_near_phrases():
    assert closest_motions("move lef", CRAFTER_MOTIONS)[0] == "move left"
    assert closest_motions("face tree", CRAFTER_MOTIONS)[0] == "face the tree"
    assert len(closest_motions("xyzzy", CRAFTER_MOTIONS)) == 3
