"""The expert restricted to the frame (``sight="view"``): what it reads, that its labels ignore the rest of the
world, that it still reaches its targets, and the options that select it; and the learned skills' hand-back when a
zombie arrives."""

import copy

import numpy as np
import pytest
from crafter import objects
from typer.testing import CliRunner

from embodia.cli import app
from tools.collect_crafter import collect_crafter
from tools.envs.crafter import ACTION_NAMES, MATERIAL_IDS, CrafterEnv
from tools.skills.crafter import SKILLS, expert_action, run_policy_skill, run_skill
from tools.skills.harness import VIEW_RADIUS, SkillRun
from tools.skills.navigation import DIRS, MOVE_ACTIONS
from vla.dagger import DaggerConfig


def _env(seed: int) -> CrafterEnv:
    env = CrafterEnv(length=100000)
    env.reset(seed=seed)
    return env


def _run(env: CrafterEnv, sight: str) -> SkillRun:
    return SkillRun(env, SKILLS["drink water"], budget=1, sight=sight)


def test_view_reads_the_frames_9x7_tiles_only():
    env = _env(3)
    view, full = _run(env, "view"), _run(env, "map")
    x, y = env.player_pos
    visible = view.visible()
    assert visible.sum() == 9 * 7 and full.visible().all()
    assert visible[x - 4, y - 3] and visible[x + 4, y + 3] and not visible[x + 5, y] and not visible[x, y + 4]
    for thing in ("water", "tree", "grass", "zombie", "cow"):
        assert not (view.mask(thing) & ~visible).any()
        np.testing.assert_array_equal(view.mask(thing), full.mask(thing) & visible)
    assert not (view.occupied() & ~visible).any()


def test_view_labels_ignore_everything_out_of_frame_map_labels_do_not():
    """Put a lake just out of the frame: the view expert's next action stays the same, the map expert's turns."""
    env = _env(0)
    assert not _run(env, "view").mask("water").any(), "world 0 starts with no water in view"
    view_before, map_before = expert_action(env, "drink water", "view"), expert_action(env, "drink water", "map")
    x, y = env.player_pos
    changed = 0
    rx, ry = VIEW_RADIUS
    for dx, dy in ((rx + 1, 0), (-rx - 1, 0), (0, ry + 1), (0, -ry - 1)):
        world = copy.deepcopy(env)
        world.world._mat_map[x + dx, y + dy] = MATERIAL_IDS["water"]
        assert expert_action(world, "drink water", "view") == view_before
        changed += expert_action(world, "drink water", "map") != map_before
    assert changed >= 1


def test_view_expert_walks_ahead_when_its_target_is_out_of_frame():
    env = _env(0)
    x, y = env.player_pos
    dx, dy = env.facing
    material, obj = env.world[(x + dx, y + dy)]
    assert obj is None and material in ("grass", "sand", "path"), "world 0 starts facing free ground"
    label = expert_action(env, "drink water", "view")
    assert ACTION_NAMES[label] == MOVE_ACTIONS[DIRS.index((dx, dy))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_view_expert_still_reaches_its_targets(seed):
    env = _env(seed)
    for name in ("collect wood", "collect wood", "collect wood", "place table", "make wood_pickaxe", "drink water"):
        result = run_skill(env, name, sight="view")
        assert result.ok, (seed, name, result.text)


def test_unknown_sight_is_refused_everywhere(tmp_path):
    env = _env(0)
    with pytest.raises(ValueError, match="sight"):
        SkillRun(env, SKILLS["collect wood"], budget=1, sight="telepathy")
    with pytest.raises(ValueError, match="sight"):
        DaggerConfig(out=str(tmp_path / "d"), sight="telepathy")
    with pytest.raises(ValueError, match="sight"):
        collect_crafter(tmp_path / "c", 1, sight="telepathy")
    result = CliRunner().invoke(app, ["collect", "--env", "metaworld", "--sight", "view", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--sight" in result.output


def test_collection_with_the_view_expert_says_so_in_its_card(tmp_path):
    report = collect_crafter(tmp_path / "view", 5, seed=7, sight="view")
    assert report.episodes >= 5 and report.counts.get("collect wood", 0) >= 1
    card = (tmp_path / "view" / "README.md").read_text()
    assert "the 9x7 tiles of the player's frame" in card


def test_the_agent_runs_the_view_expert_as_its_skills():
    from agents.rafa import RafaConfig, make_skill_runner

    RafaConfig(skills="expert-view")  # a valid config
    runner = make_skill_runner("expert-view")
    env, twin = _env(5), _env(5)
    ran, reference = runner(env, "collect wood"), run_skill(twin, "collect wood", sight="view")
    assert ran.ok and ran.data == reference.data
    with pytest.raises(ValueError, match="expert-view"):
        RafaConfig(skills="expert-telepathic")


def _free_neighbour(env: CrafterEnv) -> tuple[int, int]:
    x, y = env.player_pos
    for dx, dy in DIRS:
        material, obj = env.world[(x + dx, y + dy)]
        if obj is None and material in ("grass", "sand", "path"):
            return x + dx, y + dy
    raise AssertionError("no free tile next to the player")


def _zombie_arrives_on_first_action(env: CrafterEnv):
    """A policy that does nothing, except that a zombie steps next to the player as it first acts."""
    def choose(obs):
        if not choose.arrived:
            env.world.add(objects.Zombie(env.world, _free_neighbour(env), env.player))
            choose.arrived = True
        return ACTION_NAMES.index("noop")
    choose.arrived = False
    return choose


def test_a_learned_skill_hands_back_when_a_zombie_arrives_if_asked():
    env = _env(0)
    result = run_policy_skill(env, "drink water", _zombie_arrives_on_first_action(env), budget=20,
                              stop_on_new_threat=True)
    assert not result.ok and "zombie came next to me" in result.error and result.data["steps"] == 1
    env = _env(0)  # off (the default, and the per-skill suite): the run goes on to its budget
    result = run_policy_skill(env, "drink water", _zombie_arrives_on_first_action(env), budget=20)
    assert "budget of 20 ran out" in result.error
    env = _env(0)  # a fight is where the zombie belongs
    result = run_policy_skill(env, "fight zombie", _zombie_arrives_on_first_action(env), budget=5,
                              stop_on_new_threat=True)
    assert "zombie came next to me" not in (result.error or "")


def test_a_zombie_already_there_does_not_stop_the_skill_again():
    env = _env(0)
    env.world.add(objects.Zombie(env.world, _free_neighbour(env), env.player))
    noop = ACTION_NAMES.index("noop")
    result = run_policy_skill(env, "drink water", lambda obs: noop, budget=3, stop_on_new_threat=True)
    assert "zombie came next to me" not in (result.error or "")
