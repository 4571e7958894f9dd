"""The policy registry: names, 'learned' and checkpoint folders load real policies; every bad reference says why."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from agents.rafa import RafaConfig
from tests.vla.training import TINY
from tools.envs.crafter import CrafterEnv
from vla import registry
from vla.base import CheckpointError, Policy, PolicyConfig
from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.registry import LEARNED, load_policy, new_policy, policy_names, register
from vla.skills import DEFAULT_CHECKPOINT, LearnedSkillRunner


def crafter_obs() -> dict[str, np.ndarray]:
    obs, _ = CrafterEnv(seed=0).reset(seed=0)
    return obs


def test_folder_round_trip_gives_the_same_policy(checkpoint):
    saved = json.loads((checkpoint / "config.json").read_text())
    assert saved["policy_type"] == "hybrid" and saved["d_model"] == 32
    torch.manual_seed(0)
    original = HybridVLAPolicy(HybridConfig(**TINY)).eval()
    loaded = load_policy(checkpoint)
    assert type(loaded) is HybridVLAPolicy and loaded.config == original.config
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    obs = crafter_obs()
    assert [original.act(obs, "collect wood") for _ in range(3)] == [loaded.act(obs, "collect wood") for _ in range(3)]


def test_names_and_learned_load_the_shipped_checkpoint():
    assert policy_names()[0] == "hybrid"
    shipped = load_policy("hybrid")
    learned = load_policy(LEARNED)
    assert registry.checkpoint_of(LEARNED) == registry.checkpoint_of("hybrid") == DEFAULT_CHECKPOINT
    assert shipped.config == learned.config and shipped.config.state_dim == 42
    obs = crafter_obs()
    assert shipped.act(obs, "collect wood") == learned.act(obs, "collect wood")
    assert isinstance(LearnedSkillRunner.from_pretrained().policy, HybridVLAPolicy)


@pytest.mark.parametrize(("reference", "message"), [
    ("univla-nope", r"univla-nope does not exist: a policy is a registered name \(hybrid"),
    ("/nonexistent/policy", r"/nonexistent/policy does not exist"),
])
def test_unknown_name_or_missing_folder(reference, message):
    with pytest.raises(CheckpointError, match=message):
        load_policy(reference)


def test_config_without_or_with_an_unknown_type_names_the_file(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    del config["policy_type"]
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json has no 'policy_type'; registered policy types: hybrid"):
        load_policy(checkpoint)
    (checkpoint / "config.json").write_text(json.dumps({**config, "policy_type": "gato"}))
    with pytest.raises(CheckpointError, match=r"config.json names policy type 'gato'"):
        load_policy(checkpoint)
    with pytest.raises(CheckpointError, match=r"a 'gato' policy checkpoint, not 'hybrid'"):
        HybridVLAPolicy.from_pretrained(checkpoint)


def test_corrupt_or_mismatched_checkpoint_names_the_file(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "d_model": 48}))
    with pytest.raises(CheckpointError, match=r"model.safetensors: weights do not match .*config.json"):
        load_policy(checkpoint)
    (checkpoint / "config.json").write_text('{"policy_type": "hyb')
    with pytest.raises(CheckpointError, match=r"config.json: corrupt or truncated JSON"):
        load_policy(checkpoint)
    (checkpoint / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config.json: missing"):
        load_policy(checkpoint)


@dataclass
class ConstantConfig(PolicyConfig):
    action: int = 3


class ConstantPolicy(Policy):
    """A second family, registered the way UniVLA and RT-H will be."""

    config_class = ConstantConfig
    name = "constant"

    def predict_action_chunk(self, obs, instructions):
        return torch.full((len(instructions), self.config.chunk_size), self.config.action)


def test_a_new_family_registers_in_one_line_and_loads_from_its_folder(tmp_path):
    register("constant", f"{__name__}:ConstantPolicy")
    try:
        assert "constant" in policy_names()
        policy = new_policy(ConstantConfig(action=5))  # found by its config type
        assert type(policy) is ConstantPolicy
        policy.save_pretrained(tmp_path)
        loaded = load_policy(tmp_path)
        assert type(loaded) is ConstantPolicy and loaded.act(crafter_obs(), "noop") == 5
        with pytest.raises(CheckpointError, match="ships no checkpoint; train one with `embodia train vla --policy"):
            load_policy("constant")
        with pytest.raises(ValueError, match="'constant' is taken"):
            register("constant", f"{__name__}:ConstantPolicy")
    finally:
        registry._REGISTRY.pop("constant", None)
    with pytest.raises(ValueError, match="'learned' is taken"):
        register(LEARNED, f"{__name__}:ConstantPolicy")


def test_rafa_skills_take_names_and_folders_and_refuse_the_rest(checkpoint):
    for skills in ("expert", "learned", "hybrid", str(checkpoint)):
        assert RafaConfig(skills=skills).skills == skills
    with pytest.raises(ValueError,
                       match=r"'expert', 'expert-view', 'learned', a registered policy \(hybrid, .*\) or an existing"):
        RafaConfig(skills="hybird")


def test_cli_trains_a_registered_family_and_runs_with_its_folder(tiny_dataset, tmp_path):
    from typer.testing import CliRunner

    from embodia.cli import app

    out = tmp_path / "policy"
    trained = CliRunner().invoke(app, ["train", "vla", "--policy", "hybrid", "--data", str(tiny_dataset), "--out",
                                       str(out), "--steps", "1", "--batch-size", "4", "--d-model", "32",
                                       "--n-layers", "1", "--eval-seeds", ""])
    assert trained.exit_code == 0, trained.output
    assert json.loads((out / "config.json").read_text())["policy_type"] == "hybrid"
    run = CliRunner().invoke(app, ["run", "collect wood", "--llm", "none", "--skills", str(out), "--max-steps", "3",
                                   "--no-video", "--out", str(tmp_path / "run")])
    assert run.exit_code in (0, 1), run.output  # the untrained policy may well fail; it ran
    assert (tmp_path / "run" / "episode.jsonl").is_file()
    unknown = CliRunner().invoke(app, ["train", "vla", "--policy", "nosuch", "--data", str(tiny_dataset)])
    assert unknown.exit_code == 2 and "unknown policy 'nosuch'" in " ".join(unknown.output.split())
    bad = CliRunner().invoke(app, ["run", "collect wood", "--llm", "none", "--skills", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "an existing checkpoint folder" in " ".join(bad.output.split())


def test_eval_takes_skills_and_records_the_policy_weights(checkpoint, tmp_path):
    from evals.runner import EvalConfig
    from evals.suite import load_suite

    suite = load_suite("smoke")
    expert = EvalConfig(suite, "rafa", None, tmp_path / "a")
    assert expert.agent_config().skills == "expert" and "policy_weights" not in expert.identity()
    learned = EvalConfig(suite, "rafa", None, tmp_path / "b", skills=str(checkpoint))
    assert learned.agent_config().skills == str(checkpoint)
    shipped = EvalConfig(suite, "rafa", None, tmp_path / "c", skills="hybrid").identity()["policy_weights"]
    assert learned.identity()["policy_weights"] not in (None, shipped)  # the folder's own weights
    with pytest.raises(ValueError, match="an existing checkpoint folder"):
        EvalConfig(suite, "rafa", None, tmp_path / "d", skills="hybird")
