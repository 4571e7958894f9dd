"""tools.train_state: a checkpoint is complete or ignored, a kill anywhere in a save loses nothing, and a
restore brings back the optimizer and every RNG exactly."""

from __future__ import annotations

import os
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tools import train_state


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after the raising call runs."""


def model_and_optimizer(seed: int = 0) -> tuple[torch.nn.Linear, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    loss = model(torch.randn(8, 4)).square().mean()  # draws from torch's RNG, as dropout or noise would
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def save_weights(model: torch.nn.Module) -> object:
    return lambda folder: save_file(dict(model.state_dict()), Path(folder) / "model.safetensors")


def checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, n: int) -> Path:
    return train_state.save(folder, step=n, optimizer=optimizer, save_model=save_weights(model), extra={"n": n})


def test_resumed_steps_equal_the_uninterrupted_ones_bit_for_bit(tmp_path):
    model, optimizer = model_and_optimizer()
    for _ in range(3):
        step(model, optimizer)
    checkpoint(tmp_path / "checkpoint", model, optimizer, 3)
    random.random(), np.random.rand()  # the run goes on drawing from every generator
    for _ in range(2):
        step(model, optimizer)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    after = (random.random(), np.random.rand())

    torch.manual_seed(123), random.seed(5), np.random.seed(7)  # a new process starts from other RNG states
    model, optimizer = model_and_optimizer(seed=99)
    model.load_state_dict(load_file(tmp_path / "checkpoint" / "model.safetensors"))
    state = train_state.restore(train_state.recover(tmp_path / "checkpoint"), optimizer)
    assert (state["step"], state["extra"]) == (3, {"n": 3})
    random.random(), np.random.rand()
    for _ in range(2):
        step(model, optimizer)
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert (random.random(), np.random.rand()) == after
    assert not any(p.suffix for p in tmp_path.iterdir())  # no .tmp/.old left after a clean save


def killing_replace(calls_before_kill: int):
    """An ``os`` for ``tools.train_state`` whose ``replace`` works ``calls_before_kill`` times, then kills."""
    calls = []

    def replace(src, dst):
        calls.append(src)
        if len(calls) > calls_before_kill:
            raise Killed
        return os.replace(src, dst)

    names = {name: getattr(os, name) for name in dir(os) if not name.startswith("__")}
    return SimpleNamespace(**{**names, "replace": replace})


def test_killed_between_the_renames_resumes_from_the_new_copy_and_deletes_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoint"
    model, optimizer = model_and_optimizer()
    checkpoint(folder, model, optimizer, 1)
    step(model, optimizer)
    expected = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    monkeypatch.setattr(train_state, "os", killing_replace(calls_before_kill=1))  # checkpoint -> .old, then kill
    with pytest.raises(Killed):
        checkpoint(folder, model, optimizer, 2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.old", "checkpoint.tmp"]

    assert train_state.recover(folder) == folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    _, fresh_optimizer = model_and_optimizer(seed=1)
    assert train_state.restore(folder, fresh_optimizer)["step"] == 2
    for key, value in fresh_optimizer.state_dict()["state"][0].items():
        assert torch.equal(value, expected[key]), key


def test_killed_while_writing_keeps_the_last_good_checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    model, optimizer = model_and_optimizer()
    checkpoint(folder, model, optimizer, 1)
    torn = tmp_path / "checkpoint.tmp"  # a save of step 2 killed before its state file was written
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"half")
    old = tmp_path / "checkpoint.old"  # and only the old copy left
    os.replace(folder, old)
    assert train_state.recover(folder) == folder
    assert train_state.read_state(folder)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_no_complete_copy_is_an_error_not_a_silent_restart(tmp_path):
    folder = tmp_path / "checkpoint"
    model, optimizer = model_and_optimizer()
    checkpoint(folder, model, optimizer, 1)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated after the save
    with pytest.raises(train_state.CorruptCheckpointError, match="no complete checkpoint"):
        train_state.recover(folder)
    assert weights.exists()  # nothing removed: the user decides
    assert train_state.recover(tmp_path / "never-written") is None


def test_resume_with_another_config_names_the_fields(tmp_path):
    saved = {"lr": 1e-3, "batch_size": 8, "steps": 10}
    train_state.check_resumable(tmp_path, saved, {"lr": 1e-3, "batch_size": 8, "steps": 20}, ("steps",))
    with pytest.raises(train_state.ResumeMismatchError, match=r"lr: saved 0.001, now 0.01; batch_size: saved 8"):
        train_state.check_resumable(tmp_path, saved, {"lr": 1e-2, "batch_size": 4, "steps": 10})


def test_resume_compares_nested_fields_and_accepts_fields_added_since(tmp_path):
    saved = {"lr": 1e-3, "policy": {"d_model": 64}}  # written before 'vision_init' and 'policy.vision' existed
    train_state.check_resumable(tmp_path, saved, {"lr": 1e-3, "vision_init": "", "policy": {"d_model": 64,
                                                                                        "vision": "patches"}})
    with pytest.raises(train_state.ResumeMismatchError, match=r"\(policy\.d_model: saved 64, now 48\)"):
        train_state.check_resumable(tmp_path, saved, {"lr": 1e-3, "policy": {"d_model": 48, "vision": "patches"}})
