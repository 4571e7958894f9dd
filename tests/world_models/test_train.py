"""World-model training through tools.train_state: a resumed run equals the uninterrupted one, a run killed
between the checkpoint renames resumes from the good copy, and ``state_scale`` survives save and resume."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import world_models.config as config_module
from tests.world_models.conftest import MICRO
from tools import train_state
from world_models.rssm import read_config
from world_models.train import CHECKPOINT_DIR, MODEL_DIR, TrainConfig, train

SHIPPED = Path(__file__).resolve().parents[2] / "world_models/checkpoints/rssm-crafter-tiny"


@pytest.fixture(autouse=True)
def micro_preset():
    config_module.PRESETS["micro"] = replace(config_module.PRESETS["tiny"], **MICRO)
    yield
    del config_module.PRESETS["micro"]


def config(data: Path, out: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{"data": data, "out": out, "preset": "micro", "steps": 4, "batch_size": 2,
                          "checkpoint_every": 2, **overrides})


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = weights(a), weights(b)
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def test_resumed_run_equals_the_uninterrupted_one(data, tmp_path):
    full = train(config(data, tmp_path / "full"))
    train(config(data, tmp_path / "resumed", steps=2))
    resumed = train(config(data, tmp_path / "resumed", resume=True))
    assert_same_weights(tmp_path / "full" / MODEL_DIR, tmp_path / "resumed" / MODEL_DIR)
    assert resumed["loss"] == full["loss"]


def test_killed_between_the_renames_resumes_from_the_new_copy(data, tmp_path, monkeypatch):
    train(config(data, tmp_path / "full"))
    out = tmp_path / "killed"
    train(config(data, out, steps=2))
    real_replace = os.replace

    def replace_then_kill(src, dst):  # the save at update 4 dies after checkpoint -> checkpoint.old
        if Path(src).name == "checkpoint.tmp" and Path(dst).name == CHECKPOINT_DIR:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(train_state.os, "replace", replace_then_kill)
    with pytest.raises(KeyboardInterrupt):
        train(config(data, out, resume=True))
    monkeypatch.undo()
    assert sorted(p.name for p in out.glob("checkpoint*")) == ["checkpoint.old", "checkpoint.tmp"]

    train(config(data, out, resume=True))  # resumes at update 4 from checkpoint.tmp, not at 0
    assert train_state.read_state(out / CHECKPOINT_DIR)["step"] == 4
    assert not (out / "checkpoint.old").exists() and not (out / "checkpoint.tmp").exists()
    assert_same_weights(tmp_path / "full" / MODEL_DIR, out / MODEL_DIR)


def test_state_scale_of_a_resumed_stage_is_saved_and_kept(data, tmp_path):
    out = tmp_path / "stages"
    train(config(data, out, steps=2))
    assert read_config(out / CHECKPOINT_DIR).state_scale == 1.0
    train(config(data, out, steps=3, resume=True, state_scale=10.0))  # stage 2: --resume --state-scale 10
    assert read_config(out / CHECKPOINT_DIR).state_scale == 10.0
    assert read_config(out / MODEL_DIR).state_scale == 10.0
    train(config(data, out, steps=4, resume=True))  # a later --resume without the flag keeps 10
    assert read_config(out / MODEL_DIR).state_scale == 10.0


def test_shipped_checkpoint_records_the_state_scale_it_was_fine_tuned_with():
    assert "--resume --state-scale 10" in (SHIPPED / "README.md").read_text()
    assert read_config(SHIPPED).state_scale == 10.0


def test_config_json_that_does_not_parse_names_the_file(data, tmp_path):
    out = tmp_path / "broken"
    train(config(data, out, steps=2))
    (out / CHECKPOINT_DIR / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken/checkpoint/config.json is not a valid"):
        read_config(out / CHECKPOINT_DIR)
    assert json.loads((out / CHECKPOINT_DIR / train_state.STATE_FILE).read_text())["step"] == 2


def cli_defaults(*path: str) -> dict[str, object]:
    """The defaults the real ``embodia`` CLI gives the options of command ``path``."""
    import typer

    from embodia.cli import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {param.name: param.default for param in command.params}


def test_cli_defaults_are_the_train_configs():
    from dataclasses import MISSING, fields

    defaults = cli_defaults("train", "world-model")
    checked = [f.name for f in fields(TrainConfig) if f.default is not MISSING]
    assert checked and all(defaults[name] == getattr(TrainConfig, name) for name in checked), \
        {name: (defaults[name], getattr(TrainConfig, name)) for name in checked}
    assert (defaults["batch_size"], defaults["lr"], defaults["checkpoint_every"]) == (16, 6e-4, 250)


def test_cli_resume_from_a_damaged_checkpoint_exits_2_naming_it(data, tmp_path):
    from typer.testing import CliRunner

    from embodia.cli import app

    out = tmp_path / "cli"
    args = ["train", "world-model", "--data", str(data), "--out", str(out), "--preset", "micro", "--steps", "2",
            "--batch-size", "2", "--collect", "0"]
    assert CliRunner().invoke(app, args).exit_code == 0
    config_json = out / CHECKPOINT_DIR / "config.json"
    size = config_json.stat().st_size
    config_json.write_text("{" + "x" * (size - 1))  # damaged in place, same size: the copy still looks whole
    result = CliRunner().invoke(app, [*args, "--steps", "3", "--resume"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{config_json}isnotavalidRSSMConfig" in "".join(result.output.split())  # rich wraps lines
    weights = out / CHECKPOINT_DIR / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: no complete copy is left
    result = CliRunner().invoke(app, [*args, "--steps", "3", "--resume"])
    assert result.exit_code == 2 and "nocompletecheckpoint" in "".join(result.output.split())
    assert weights.exists()  # refused, not restarted at update 0 over it
