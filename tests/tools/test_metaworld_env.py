"""Meta-World wrapper: gymnasium-valid, seeded, upright 64x64 frames, experts that solve, continuous datasets."""

import datasets
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from typer.testing import CliRunner

from embodia.cli import app
from tools.collect_metaworld import collect_metaworld
from tools.envs.metaworld import TASKS, MetaWorldEnv, ScriptedExpert
from tools.episode_dataset import ACTION, DONE, EPISODE_INDEX, INSTRUCTION, OBS_IMAGE, decode_png
from vla.data import dataset_spaces, load_frames


@pytest.fixture
def make_env():
    envs: list[MetaWorldEnv] = []

    def make(task: str = "reach", **kwargs) -> MetaWorldEnv:
        envs.append(MetaWorldEnv(task, **kwargs))
        return envs[-1]

    yield make
    for env in envs:  # free the GL contexts while the GL library is still loaded
        env.close()


@pytest.mark.filterwarnings("ignore:.*(infinity|spec).*")  # the object/goal state is unbounded, as in Meta-World
def test_passes_gymnasium_env_checker(make_env):
    check_env(make_env("push"), skip_render_check=False)


def test_same_seed_same_trajectory_other_seed_other_placement(make_env):
    a, b = make_env("push"), make_env("push")
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype(np.float32)
    runs = []
    for env in (a, b):
        obs, _ = env.reset(seed=7)
        frames = [obs]
        frames += [env.step(action)[0] for action in actions]
        runs.append(frames)
    for x, y in zip(*runs, strict=True):
        assert np.array_equal(x["image"], y["image"]) and np.array_equal(x["state"], y["state"])
    assert not np.array_equal(a.reset(seed=8)[0]["state"], runs[0][0]["state"])


def test_frames_are_64x64_and_upright(make_env):
    """Moving the hand up must move the red arm's pixels up in the image (the raw corner camera is upside down)."""
    env = make_env("reach")
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8

    def arm_row(image: np.ndarray) -> float:
        red = (image[..., 0] > 100) & (image[..., 1] < 60) & (image[..., 2] < 60)
        return float(np.nonzero(red)[0].mean())

    for _ in range(15):
        up, *_ = env.step(np.array([0, 0, 1, 0], np.float32))
    for _ in range(30):
        down, *_ = env.step(np.array([0, 0, -1, 0], np.float32))
    assert up["state"][2] > down["state"][2] + 0.15  # the hand really moved
    assert arm_row(up["image"]) < arm_row(down["image"]) - 1.0


def test_wrong_action_shape_names_both(make_env):
    env = make_env("reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action shape \(3,\) != env action space shape \(4,\)"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="unknown Meta-World task 'fly'"):
        MetaWorldEnv("fly")


@pytest.mark.parametrize("task", ["reach", "drawer-close"])
def test_scripted_expert_solves_the_task(make_env, task):
    env, expert = make_env(task), ScriptedExpert(task)
    obs, _ = env.reset(seed=123)
    for _ in range(env.max_steps):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        if terminated or truncated:
            break
    assert terminated and info["success"] and env.steps < 120


def test_continuous_dataset_round_trip(tmp_path):
    report = collect_metaworld(tmp_path, episodes=2, tasks=["reach"], seed=0, command="pytest")
    assert (report.episodes, report.counts) == (2, {TASKS["reach"].instruction: 2})
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "data" / "*.parquet"), split="train")
    assert len(ds) == report.frames and sorted(set(ds[EPISODE_INDEX])) == [0, 1]
    actions = np.asarray(ds[ACTION], np.float32)
    assert actions.shape == (report.frames, 4) and np.abs(actions).max() <= 1.0
    assert decode_png(ds[0][OBS_IMAGE]).shape == (64, 64, 3) and set(ds[INSTRUCTION]) == {"reach the goal"}
    assert sum(ds[DONE]) == 2 and "a list of 4 floats" in (tmp_path / "README.md").read_text()
    assert dataset_spaces(tmp_path) == {"state_dim": 39, "action_space": "continuous", "action_dim": 4}
    frames = load_frames(tmp_path, chunk_size=4, max_instruction_len=32)
    assert frames.action.shape == (report.frames, 4, 4) and frames.action.dtype.is_floating_point
    assert np.array_equal(frames.action[:, 0].numpy(), actions)
    first_end = ds[DONE].index(True)  # chunks stop at the episode's end and repeat its last action
    assert np.array_equal(frames.action[first_end].numpy(), np.repeat(actions[first_end][None], 4, 0))
    again = collect_metaworld(tmp_path, episodes=2, tasks=["reach"], seed=0)
    assert (again.episodes, again.frames) == (report.episodes, report.frames)


def test_collect_cli_writes_the_dataset_and_refuses_unknown_tasks(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["collect", "--env", "metaworld", "--tasks", "reach,fly", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown Meta-World task 'fly'" in bad.output
    ok = runner.invoke(app, ["collect", "--env", "metaworld", "--tasks", "reach", "--episodes", "1",
                             "--out", str(tmp_path / "arm")])
    assert ok.exit_code == 0, ok.output
    assert len(list((tmp_path / "arm" / "data").glob("reach-seed-*.parquet"))) == 1
    assert "1 episodes" in ok.output and (tmp_path / "arm" / "README.md").exists()
