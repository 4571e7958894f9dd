"""The two user-facing commands, run as a user runs them: a real process, the real embedded planner."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.signals import sigint_default
from tools.episodes import read_log

CLI = [sys.executable, "-m", "embodia"]


def embodia(*args: str, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def test_run_short_goal_end_to_end(tmp_path: Path, embedded_model_dir):
    out = tmp_path / "episode"
    proc = embodia("run", "collect some wood", "--seed", "2", "--max-steps", "300", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "act(collect wood)" in proc.stdout and "done:" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is True and summary["goal_achievement"] == "collect_wood"
    assert summary["llm"] == "transformers:smollm2" and summary["seed"] == 2
    assert summary["env_steps"] > 0 and "collect_wood" in summary["achievements"]
    records = read_log(out / "episode.jsonl")
    kinds = {r["type"] for r in records}
    assert {"goal", "reset", "step", "PlanningStep", "ActionStep", "FinalStep", "summary"} <= kinds
    assert sum(r["type"] == "step" for r in records) == summary["env_steps"]
    assert (out / "video.mp4").stat().st_size > 1000


def test_run_unknown_goal_answers_honestly(tmp_path: Path):
    proc = embodia("run", "fly to the moon", "--llm", "none", "--out", str(tmp_path / "moon"), "--no-video")
    assert proc.returncode == 1
    assert "cannot do 'fly to the moon' here" in " ".join(proc.stdout.split())
    assert json.loads((tmp_path / "moon" / "summary.json").read_text())["goal_achievement"] is None


def test_run_rejects_unknown_backend():
    proc = embodia("run", "collect wood", "--llm", "nosuch:model")
    assert proc.returncode == 2
    assert "nosuch" in proc.stdout and "transformers" in proc.stdout


def test_run_with_a_world_model_that_is_not_a_checkpoint_says_so(tmp_path: Path):
    proc = embodia("run", "collect wood", "--llm", "none", "--imagine", "--world-model", str(tmp_path))
    assert proc.returncode == 2
    assert "not a world-model checkpoint folder" in " ".join(proc.stdout.split())


@pytest.mark.parametrize("llm", ["none"])
def test_chat_driven_through_stdin(tmp_path: Path, llm: str):
    out = tmp_path / "chat"
    script = "what do you have?\ncollect wood\nwhat do you have?\nfly to the moon\n/save\n/quit\n"
    proc = embodia("chat", "--seed", "4", "--llm", llm, "--out", str(out), "--no-video", stdin=script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "I have nothing yet" in text
    assert "Done: collect wood" in text
    assert "I have 1 wood" in text or "I have 2 wood" in text
    assert "cannot do 'fly to the moon'" in text
    world = json.loads((out / "world.json").read_text())
    assert world["seed"] == 4 and len(world["actions"]) > 0

    resumed = embodia("chat", "--llm", llm, "--resume", str(out), "--out", str(tmp_path / "again"), "--no-video",
                      stdin="what do you have?\nwhat did you do?\n/quit\n")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = " ".join(resumed.stdout.split())
    assert "wood" in again.split("agent>")[1]
    assert "collect wood: ok" in again


def test_chat_ctrl_c_interrupts_the_goal_and_keeps_the_world(tmp_path: Path, embedded_model_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*CLI, "chat", "--seed", "6", "--out", str(tmp_path / "chat"), "--no-video"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, preexec_fn=sigint_default)
    proc.stdin.write("make an iron pickaxe\n")
    proc.stdin.flush()
    seen = []
    for line in proc.stdout:  # wait until the agent is mid-goal
        seen.append(line)
        if "act(" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate("what do you have?\n/save\n/quit\n", timeout=300)
    text = " ".join("".join([*seen, out]).split())
    assert proc.returncode == 0, text
    assert "interrupted — the world and memory are kept" in text
    assert "agent> I have" in text and "saved memory and world" in text
    world = json.loads((tmp_path / "chat" / "world.json").read_text())
    assert len(world["actions"]) > 0


def test_run_with_learned_skills_uses_the_shipped_policy(tmp_path: Path):
    out = tmp_path / "learned"
    proc = embodia("run", "collect wood", "--skills", "learned", "--llm", "none", "--seed", "0",
                   "--max-steps", "200", "--out", str(out), "--no-video")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((out / "summary.json").read_text())["success"] is True
    bad = embodia("run", "collect wood", "--skills", "bogus", "--llm", "none")
    assert bad.returncode == 2 and "skills must be" in bad.stdout
