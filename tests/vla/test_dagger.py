"""DAgger (``vla.dagger``) with the real Crafter env, the real scripted expert and a tiny real policy."""

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embodia.cli import app
from tools.collect_crafter import RecordSteps
from tools.envs.crafter import CrafterEnv
from tools.episode_dataset import EpisodeBuffer, shard_files
from tools.skills.crafter import expert_action, run_policy_skill, run_skill
from tools.train_state import ResumeMismatchError
from vla.base import SpaceMismatchError
from vla.dagger import DaggerConfig, rollout, run_dagger
from vla.hybrid import HybridConfig
from vla.registry import new_policy
from vla.skills import LearnedSkillRunner

SKILLS = ("collect wood", "place table")


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """An untrained tiny HybridVLA saved as a checkpoint folder: a learner that errs often."""
    folder = tmp_path_factory.mktemp("tiny-policy")
    new_policy(HybridConfig(d_model=16, n_layers=1, n_heads=2, seed=0)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("sight", ["map", "view"])
def test_expert_action_is_the_experts_next_step(sight):
    """Driving a skill one expert label at a time takes exactly the scripted expert's actions (either sight)."""
    env = CrafterEnv(seed=0)
    env.reset(seed=0)
    for name in ("collect wood", "collect wood", "collect wood", "place table", "make wood_pickaxe"):
        scripted, probed = RecordSteps(copy.deepcopy(env)), RecordSteps(copy.deepcopy(env))
        for wrapper in (scripted, probed):
            wrapper.obs, wrapper.buffer = env.observe(), EpisodeBuffer(name)
        expert = run_skill(scripted, name, sight=sight)
        labelled = run_policy_skill(probed, name, lambda obs, e=probed, n=name: expert_action(e, n, sight))
        assert expert.ok and labelled.ok and scripted.buffer.actions == probed.buffer.actions
        run_skill(env, name)
    assert expert_action(env, "make stone_pickaxe") is None  # no stone: the expert would not start
    with pytest.raises(ValueError, match=r"known skills: .*collect wood"):
        expert_action(env, "fly")


@pytest.mark.parametrize("sight", ["map", "view"])
def test_rollout_labels_the_learners_own_states_with_the_experts_actions(tiny_policy, sight):
    from vla.registry import load_policy

    env = CrafterEnv(seed=3)
    env.reset(seed=3)
    start = copy.deepcopy(env)
    buffer, steps, _ = rollout(env, "collect wood", load_policy(tiny_policy), beta=0.0,
                               rng=np.random.default_rng(0), budget=30, sight=sight)
    assert len(buffer) == len(steps) > 0 and not any(s.by_expert for s in steps)
    assert buffer.actions == [s.label for s in steps]
    assert sum(s.learner != s.label for s in steps) > 0  # the untrained learner erred; the labels say what to do
    for step in steps:  # replay the learner's trajectory: each label is the expert's action in that state
        assert expert_action(start, "collect wood", sight) == step.label
        start.step(step.executed)


def _config(tmp_path, init, base, name="run", **kw):
    return DaggerConfig(out=str(tmp_path / name), init=str(init), base_data=str(base), skills=SKILLS, rounds=1,
                        worlds=2, budget=25, steps=2, batch_size=8, eval_seeds=(), **kw)


def _rows(root):
    return sum(pq.read_metadata(f).num_rows for f in shard_files(root))


def _table(path):
    return pq.read_table(path).to_pydict()


def test_round_grows_the_aggregate_by_its_visited_states_and_resumes_after_a_kill(tiny_policy, tiny_dataset,
                                                                                  tmp_path):
    whole = run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "whole", beta=0.5))
    record = whole["rounds"][1]
    assert record["visited"] == record["rows_added"] > 0 and record["learner_steps"] > 0
    assert record["aggregate_rows"] == _rows(tiny_dataset) + record["visited"]
    assert _rows(tmp_path / "whole" / "data") == record["aggregate_rows"]
    policy = tmp_path / "whole" / "rounds" / "round-01" / "policy"
    assert (policy / "model.safetensors").is_file()
    learned = json.loads((policy / "config.json").read_text())["instructions"]
    assert learned == sorted(set(pq.read_table(tmp_path / "whole" / "data" / "data").column("instruction").to_pylist()))

    def killed(round_no, phase, done, total):  # stop after the first of the round's two worlds
        if phase == "collect" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "cut", beta=0.5), killed)
    shard = "data/data/round-01.parquet"
    assert not (tmp_path / "cut" / shard).exists()  # nothing half-written joins the aggregate
    with pytest.raises(FileExistsError, match="--resume"):
        run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "cut", beta=0.5))
    with pytest.raises(ResumeMismatchError, match="beta"):
        run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "cut", beta=0.25, resume=True))
    resumed = run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "cut", beta=0.5, resume=True))
    assert _table(tmp_path / "cut" / shard) == _table(tmp_path / "whole" / shard)
    assert resumed["rounds"][1]["rows_added"] == record["rows_added"]
    assert _rows(tmp_path / "cut" / "data") == record["aggregate_rows"]  # no row twice
    again = run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "cut", beta=0.5, resume=True))
    assert again["rounds"] == resumed["rounds"]  # a finished round is skipped, not redone


def test_on_policy_fraction_trains_on_a_view_that_repeats_the_dagger_rows_and_leaves_the_aggregate_alone(
        tiny_policy, tiny_dataset, tmp_path):
    result = run_dagger(_config(tmp_path, tiny_policy, tiny_dataset, "weighted", beta=0.5, on_policy_fraction=0.95))
    record = result["rounds"][1]
    expert, dagger = _rows(tiny_dataset), record["rows_added"]
    view = record["training_view"]
    assert record["aggregate_rows"] == expert + dagger == _rows(tmp_path / "weighted" / "data")  # each state once
    assert view["repeats"] == round(0.95 * expert / (0.05 * dagger)) > 1
    folder = tmp_path / "weighted" / "rounds" / "round-01" / "train-view"
    assert _rows(folder) == expert + dagger * view["repeats"]
    uniform = dagger / (expert + dagger)
    assert abs(view["on_policy_share"] - 0.95) < abs(uniform - 0.95)  # nearer the asked share than uniform
    trained = json.loads((tmp_path / "weighted" / "rounds" / "round-01" / "policy" / "metrics.json").read_text())
    assert trained["train_rows"] + trained["val_rows"] == _rows(folder)  # the round trained on the view
    with pytest.raises(ValueError, match="on_policy_fraction"):
        DaggerConfig(on_policy_fraction=1.0)


def test_cli_dagger_round_table_and_bad_input(tiny_policy, tiny_dataset, tmp_path):
    out = tmp_path / "cli"
    args = ["train", "dagger", "--init", str(tiny_policy), "--base-data", str(tiny_dataset), "--out", str(out),
            "--skills", "collect wood", "--rounds", "1", "--worlds", "1", "--budget", "15", "--steps", "2",
            "--batch-size", "8", "--eval-seeds", "1000", "--eval-budget", "15"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "expert" in result.output and "collect wood" in result.output
    saved = json.loads((out / "dagger.json").read_text())
    assert [row["round"] for row in saved["table"]] == [0, 1, "expert"]
    assert CliRunner().invoke(app, args).exit_code == 2  # the folder holds a run: --resume or another --out
    bad = CliRunner().invoke(app, [*args[:-2], "--skills", "fly", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "known skills" in " ".join(bad.output.split())
    missing = CliRunner().invoke(app, [*args, "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert missing.exit_code == 2 and "nope does not exist" in " ".join(missing.output.split())
    assert not (tmp_path / "y").exists()


def test_eval_smoke_with_learned_skills_runs_through_the_runner(tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "smoke", "--agent", "rafa", "--llm", "none", "--skills", "learned",
                                      "--num-seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    identity = json.loads((out / "run.json").read_text())["identity"]
    assert identity["agent_config"]["skills"] == "learned" and identity["policy_weights"]
    episodes = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(episodes) == 3 and all(e["status"] == "ok" and e["env_steps"] > 0 for e in episodes)


def test_learned_runner_refuses_skills_and_checkpoints_that_do_not_fit():
    env = CrafterEnv(seed=0)
    env.reset(seed=0)
    runner = LearnedSkillRunner(new_policy(HybridConfig(d_model=16, n_layers=1, n_heads=2,
                                                        instructions=("collect wood", "place table"))))
    result = runner(env, "make_wood_pickaxe")
    assert not result.ok and "not trained on 'make_wood_pickaxe'" in result.error
    assert "it knows: collect wood, place table" in result.error and env.steps == 0
    assert runner(env, "Collect Wood", budget=2).data["steps"] == 2  # a known skill (any spelling) runs
    foreign = LearnedSkillRunner(new_policy(HybridConfig(d_model=16, n_layers=1, n_heads=2,
                                                         instructions=("reach-v3",))))
    with pytest.raises(SpaceMismatchError, match=r"checkpoint skills \['reach-v3'\].*Crafter skills: collect coal"):
        foreign(env, "collect wood")
    shape = LearnedSkillRunner(new_policy(HybridConfig(d_model=16, n_layers=1, n_heads=2, state_dim=40)))
    with pytest.raises(SpaceMismatchError, match=r"state shape \(42,\) != checkpoint state_dim \(40,\)"):
        shape(env, "collect wood")
