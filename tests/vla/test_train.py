"""The VLA trainer on real collected data: a run resumed at step N equals the uninterrupted run, and a
resume under another config is refused (in the library and on the CLI)."""

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from embodia.cli import app
from tools import train_state
from vla.base import WEIGHTS_FILE
from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.train import CHECKPOINT_DIR, TrainConfig, train

TINY = HybridConfig(d_model=32, n_layers=1, n_heads=2)


def config(dataset, out, **overrides) -> TrainConfig:
    return TrainConfig(**{"data": str(dataset), "out": str(out), "policy": TINY, "steps": 5, "batch_size": 8,
                          "checkpoint_every": 2, "val_every": 5, "eval_seeds": (), **overrides})


def test_resumed_run_equals_the_uninterrupted_one(tiny_dataset, tmp_path):
    untrained = train(config(tiny_dataset, tmp_path / "untrained", steps=1, lr=1e-9))["validation"]["loss"]
    full = train(config(tiny_dataset, tmp_path / "full"))
    assert full["validation"]["loss"] < untrained  # five steps learn something on held-out rows
    train(config(tiny_dataset, tmp_path / "resumed", steps=3))  # stopped after step 3 (mid-epoch)
    resumed = train(config(tiny_dataset, tmp_path / "resumed", resume=True))
    state = train_state.read_state(tmp_path / "resumed" / CHECKPOINT_DIR)
    assert (state["step"], state["extra"]["samples"]) == (5, 5 * 8)
    expected, got = load_file(tmp_path / "full" / WEIGHTS_FILE), load_file(tmp_path / "resumed" / WEIGHTS_FILE)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert resumed["validation"] == full["validation"]
    learned = ("collect stone", "collect wood", "make wood_pickaxe", "place table")  # the data's instructions
    assert HybridVLAPolicy.from_pretrained(tmp_path / "resumed").config == replace(TINY, instructions=learned)


@pytest.mark.parametrize("change", [{"lr": 5e-4}, {"batch_size": 4}, {"policy": HybridConfig(d_model=48, n_layers=1,
                                                                                            n_heads=2)}])
def test_resume_with_another_config_is_refused(tiny_dataset, tmp_path, change):
    train(config(tiny_dataset, tmp_path, steps=2))
    before = load_file(tmp_path / CHECKPOINT_DIR / WEIGHTS_FILE)
    field = next(iter(change))
    with pytest.raises(train_state.ResumeMismatchError, match=rf"another training config \({field}[.:]"):
        train(config(tiny_dataset, tmp_path, steps=4, resume=True, **change))
    after = load_file(tmp_path / CHECKPOINT_DIR / WEIGHTS_FILE)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the checkpoint is untouched
    train(config(tiny_dataset, tmp_path, steps=4, resume=True, checkpoint_every=1))  # the cadence may change


def test_cli_resume_with_another_lr_exits_2_without_a_traceback(tiny_dataset, tmp_path):
    args = ["train", "vla", "--data", str(tiny_dataset), "--out", str(tmp_path), "--steps", "2", "--batch-size", "8",
            "--d-model", "32", "--n-layers", "1", "--eval-seeds", ""]
    assert CliRunner().invoke(app, args).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--resume", "--lr", "5e-4"])
    assert result.exit_code == 2, result.output
    assert "another training config" in result.output and "lr: saved 0.001, now 0.0005" in result.output
    assert "Traceback" not in result.output


def test_cli_defaults_are_the_train_and_policy_configs():
    import typer

    from tools.seeds import parse_seeds

    command = typer.main.get_command(app).commands["train"].commands["vla"]
    defaults = {param.name: param.default for param in command.params}
    base, policy = TrainConfig(), HybridConfig()
    for name in ("steps", "batch_size", "lr", "warmup_steps", "max_rows", "val_every", "seed", "checkpoint_every",
                 "eval_budget", "resume"):
        assert defaults[name] == getattr(base, name), name
    assert (str(defaults["data"]), str(defaults["out"])) == (base.data, base.out)
    assert parse_seeds(defaults["eval_seeds"]) == base.eval_seeds
    for name in ("d_model", "n_layers", "chunk_size", "num_inference_steps", "ar_loss_weight",
                 "diffusion_loss_weight", "max_instruction_len", "num_bins"):
        assert defaults[name] == getattr(policy, name), name
