"""Pixel perception: the reader learns to read real frames, the pixel env withholds the world, and a
pixel-mode episode never reads the privileged state outside the skills (which read it by design)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.episode import run_episode
from agents.perception import DEFAULT_VLM, check_pixel_llm_spec
from agents.rafa import RafaAgent, RafaConfig
from tools.envs.crafter import CrafterEnv
from tools.envs.pixels import PixelEnv, PrivilegedStateWithheld
from tools.vlm_data import FrameShapeError, collect, parse_question

torch = pytest.importorskip("torch")
SHIPPED = (DEFAULT_VLM / "encoder" / "model.safetensors").is_file()


def test_pixel_env_keeps_frame_reward_and_end_only():
    env = PixelEnv(CrafterEnv(seed=0, length=50))
    obs, info = env.reset(seed=0)
    assert set(info) <= {"reward", "discount"} and not obs["state"].any()
    obs, _, _, _, info = env.step(5)
    assert set(info) == {"reward", "discount"} and obs["image"].shape == (64, 64, 3)
    for name in ("semantic", "inventory", "player_pos", "achievements", "describe", "world"):
        with pytest.raises(PrivilegedStateWithheld, match="withholds"):
            getattr(env.unwrapped, name)
    assert env.unwrapped is env and env.steps == 1


def test_reader_refuses_a_frame_of_another_shape():
    from tools.models.tile_encoder import VisionEncoder

    encoder = VisionEncoder()
    for shape in ((32, 32, 3), (64, 64, 4), (64, 64)):
        with pytest.raises(FrameShapeError, match=r"64x64 RGB .* got shape"):
            encoder.read(np.zeros(shape, np.uint8))


def test_pixels_with_a_text_only_planner_names_the_models_that_can():
    with pytest.raises(ValueError, match="embodia-vlm"):
        check_pixel_llm_spec("transformers:smollm2")
    check_pixel_llm_spec("transformers:embodia-vlm")
    check_pixel_llm_spec("openai:some-vision-model")


def test_trained_question_forms_parse():
    assert parse_question("How much wood do you have?") == ("count", "wood")
    assert parse_question("is there a table nearby?") == ("near", "table")
    assert parse_question("What do you see?") == ("see", "")
    assert parse_question("tell me a joke") is None


@pytest.mark.slow
def test_encoder_reads_the_inventory_of_real_held_out_frames_after_a_short_run():
    from agents.vision.train import VLMTrainConfig, train_encoder

    torch.set_num_threads(1)
    frames = collect([10_000, 10_001, 10_002], steps=500, every=2)
    encoder = train_encoder(frames, VLMTrainConfig(encoder_epochs=12, encoder_batch=32, encoder_minutes=3),
                            log=lambda _: None)
    held = collect([20_000], steps=300, every=10)  # a world never trained on
    rich = [i for i in range(len(held)) if sum(held.inventory[i][4:]) > 0]  # frames holding items
    assert rich, "the held-out world should reach frames with items"
    right = [encoder.read(held.frames[i]).inventory == held.reading(i).inventory for i in range(len(held))]
    assert np.mean(right) >= 0.9
    assert encoder.read(held.frames[rich[-1]]).inventory == held.reading(rich[-1]).inventory


#: Callers whose reads are not the agent's: the env itself, and run_episode's summary after the agent finished.
_NOT_THE_AGENT = ("tools/envs/crafter.py", "agents/episode.py")


class _Watched(CrafterEnv):
    """Crafter counting reads of its privileged accessors from outside itself while no skill is running."""

    in_skill = False
    reads: list[str]

    def __getattribute__(self, name):
        if name in ("semantic", "inventory", "achievements", "player_pos", "daylight", "describe", "visible_things",
                    "materials", "facing", "world", "player") and not object.__getattribute__(self, "in_skill"):
            caller = sys._getframe(1).f_code.co_filename
            if not caller.endswith(_NOT_THE_AGENT):
                object.__getattribute__(self, "reads").append(name)
        return object.__getattribute__(self, name)


@pytest.mark.skipif(not SHIPPED, reason="the shipped VLM (agents/adapters/embodia-vlm) is not there")
def test_a_pixel_mode_episode_reads_no_privileged_state_outside_the_skills(tmp_path):
    worlds: list[_Watched] = []

    def make_env(seed, config):
        env = _Watched(seed=seed, length=config.max_env_steps)
        env.reads = []
        worlds.append(env)
        return env

    def make_agent(env, llm, memory, config):
        agent = RafaAgent(env, llm, memory, config)
        act = agent.tools["act"]
        inner = act.runner

        def runner(skill_env, name, budget=None):
            worlds[0].in_skill = True
            try:
                return inner(skill_env, name, budget=budget)
            finally:
                worlds[0].in_skill = False

        act.runner = runner
        return agent

    config = RafaConfig(perception="pixels", max_env_steps=400, max_decisions=20)
    result = run_episode("place a table", seed=1, out_dir=tmp_path, llm=None, config=config, video=False,
                         make_agent=make_agent, make_env=make_env)
    assert result.summary["decisions"] >= 2, result.summary
    assert worlds[0].reads == [], f"the planner read privileged state: {sorted(set(worlds[0].reads))}"
    # the same episode with privileged perception does read it: the watch is not blind
    worlds.clear()
    run_episode("place a table", seed=1, out_dir=tmp_path / "p", llm=None, make_agent=make_agent,
                make_env=make_env, config=RafaConfig(max_env_steps=400, max_decisions=20), video=False)
    assert "semantic" in worlds[0].reads


@pytest.mark.skipif(not SHIPPED, reason="the shipped VLM (agents/adapters/embodia-vlm) is not there")
def test_embodia_run_with_pixel_perception_end_to_end(tmp_path: Path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "embodia", "run", "collect wood", "--perception", "pixels",
                           "--llm", "none", "--max-steps", "300", "--no-video", "--seed", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / "episode.jsonl").read_text()
    assert '"collect_wood unlocked"' in log or "collect_wood unlocked" in log
    bad = subprocess.run([sys.executable, "-m", "embodia", "eval", "smoke", "--perception", "pixels", "--llm",
                          "transformers:smollm2", "--out", str(tmp_path / "e")], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "embodia-vlm" in bad.stdout + bad.stderr


@pytest.mark.skipif(not SHIPPED, reason="the shipped VLM (agents/adapters/embodia-vlm) is not there")
def test_chat_in_pixel_mode_answers_from_the_frame(tmp_path):
    from agents.chat import ChatReply, ChatSession

    session = ChatSession(None, seed=0, out_dir=tmp_path, config=RafaConfig(perception="pixels"), video=False)
    try:
        replies = [r.text for r in session.handle("get some wood") if isinstance(r, ChatReply)]
        assert replies[-1].startswith("Done"), replies
        assert isinstance(session.agent.env, PixelEnv)
        truth = session.env.unwrapped.inventory["wood"]  # the test may look; the agent may not
        assert [r.text for r in session.handle("how much wood do you have?")] == [str(truth)]
        look = next(iter(session.handle("/look"))).text
        assert look.startswith("Inventory: wood") and "Achievements: collect_wood" in look
    finally:
        session.close()
