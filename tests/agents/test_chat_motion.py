"""``/motion`` in chat, driven through the session's input stream: an RT-H correction overrides the motion,
is shown and logged as intervention data; a phrase outside the vocabulary runs nothing; other skills say no."""

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from agents.chat import ChatSession
from agents.rafa import RafaConfig
from embodia.cli import app
from tests.agents.chat_helpers import replies
from tools.collect_crafter import run_chain
from tools.episode_dataset import LANGUAGE_MOTION, write_shard
from vla.registry import load_policy
from vla.rth import RTHConfig
from vla.train import TrainConfig, train


@pytest.fixture(scope="module")
def rth_checkpoint(tmp_path_factory):
    """A tiny RT-H trained for a few steps on one real Crafter world's wood and table skills."""
    root = tmp_path_factory.mktemp("rth-data")
    episodes, _ = run_chain(0, ("collect wood",) * 3 + ("place table",))
    write_shard(root / "data" / "seed-000000.parquet", episodes)
    out = tmp_path_factory.mktemp("rth")
    with torch.random.fork_rng():  # train() seeds torch globally; later tests' unseeded fixtures must not see it
        train(TrainConfig(data=str(root), out=str(out), policy=RTHConfig(d_model=32, n_layers=1, n_heads=2),
                          steps=10, batch_size=8, warmup_steps=1, val_every=3, checkpoint_every=10, eval_seeds=()))
    return out


@pytest.fixture
def rth_session(tmp_path, rth_checkpoint):
    chat = ChatSession(None, seed=0, out_dir=tmp_path / "chat", video=False,
                       config=RafaConfig(skills=str(rth_checkpoint), max_env_steps=12))
    yield chat
    chat.close()


def logged_motions(session: ChatSession) -> list[str]:
    return [m for shard in sorted((session.out_dir / "interventions" / "data").glob("*.parquet"))
            for m in pq.read_table(shard).column(LANGUAGE_MOTION).to_pylist()]


def test_corrections_before_and_during_a_goal_override_and_are_logged(rth_session):
    session = rth_session
    # before any goal: the correction waits for the next skill
    [reply] = replies(session, "/motion move left")
    assert "next 5 steps of the next skill" in reply
    assert session.env.actions == []
    texts = replies(session, "collect wood")
    assert any("logged in" in t for t in texts), texts
    assert logged_motions(session) == ["move left"] * 5
    # mid-episode: the correction runs now, on the skill in progress, each step shown
    steps_before = len(session.env.actions)
    [reply] = replies(session, "/motion face the tree")
    assert "Motion override 'face the tree' on 'collect wood'" in reply
    assert reply.count("motion 'face the tree'") == 5
    assert len(session.env.actions) == steps_before + 5
    assert logged_motions(session) == ["move left"] * 5 + ["face the tree"] * 5
    log = (session.out_dir / "episode.jsonl").read_text(encoding="utf-8")
    assert '"motion"' in log


def test_finetune_vla_interventions_learns_the_motion_query_from_chat(rth_session, rth_checkpoint, tmp_path):
    replies(rth_session, "/motion face the tree")  # before a goal: waits for the skill
    replies(rth_session, "collect wood")
    replies(rth_session, "/motion face the tree")  # during: runs now
    out = tmp_path / "tuned"
    result = CliRunner().invoke(app, ["finetune", "vla", "--interventions", str(rth_session.out_dir), "--from",
                                      str(rth_checkpoint), "--out", str(out), "--steps", "15", "--lr", "0.01"])
    assert result.exit_code == 0, result.output
    assert "10 corrected steps" in result.output
    before, after = load_policy(rth_checkpoint).state_dict(), load_policy(out).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"motion_query", "motion_head.weight", "motion_head.bias"}
    bad = CliRunner().invoke(app, ["finetune", "vla", "--interventions", str(tmp_path / "none"), "--out", str(out)])
    assert bad.exit_code == 2 and "no intervention data" in bad.output


def test_an_unknown_motion_offers_the_closest_and_runs_nothing(rth_session):
    [reply] = replies(rth_session, "/motion move lfet")
    assert "closest: move left" in reply and "Nothing was executed" in reply
    assert rth_session.env.actions == []
    assert rth_session.agent.tools["act"].runner.policy.active_override is None
    assert not (rth_session.out_dir / "interventions").exists()


def test_motion_with_other_skills_names_the_policy_that_supports_it(session):
    [reply] = replies(session, "/motion move left")
    assert "RT-H" in reply and "--skills rth" in reply and "'expert'" in reply
    assert session.env.actions == []
