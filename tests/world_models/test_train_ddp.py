"""World-model training under DDP: two real processes over gloo (``tests.ddp.spawn_launcher``).

Each rank samples its own windows (seed + rank) and saves its own sampler position, so a two-process run
resumed from its checkpoint repeats the uninterrupted two-process run exactly, and a checkpoint cannot be
resumed by another number of processes (the ranks' streams cannot be split or merged).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import world_models.config as config_module
from tests.ddp import spawn_launcher
from tests.world_models.conftest import MICRO
from tools import train_state
from world_models.train import CHECKPOINT_DIR, MODEL_DIR, TrainConfig, train


def config(data: Path, out: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{"data": data, "out": out, "preset": "micro", "steps": 4, "batch_size": 1,
                          "checkpoint_every": 2, "threads": 1, **overrides})


def _train(cfg: TrainConfig) -> None:
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a fresh process: no one-process state left over
    config_module.PRESETS["micro"] = replace(config_module.PRESETS["tiny"], **MICRO)
    train(cfg)


@pytest.mark.slow
def test_two_process_resume_repeats_the_uninterrupted_run_and_keeps_each_ranks_stream(data, tmp_path):
    from safetensors.torch import load_file

    spawn_launcher(_train, (config(data, tmp_path / "full"),), num_processes=2)
    spawn_launcher(_train, (config(data, tmp_path / "resumed", steps=2),), num_processes=2)
    samplers = train_state.read_state(tmp_path / "resumed" / CHECKPOINT_DIR)["extra"]["samplers"]
    assert len(samplers) == 2 and samplers[0] != samplers[1], "each rank must draw its own windows"
    spawn_launcher(_train, (config(data, tmp_path / "resumed", resume=True),), num_processes=2)
    full = load_file(tmp_path / "full" / MODEL_DIR / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / MODEL_DIR / "model.safetensors")
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    config_module.PRESETS["micro"] = replace(config_module.PRESETS["tiny"], **MICRO)
    try:
        with pytest.raises(ValueError, match="written by 2 process"):
            train(config(data, tmp_path / "resumed", steps=6, resume=True))
    finally:
        del config_module.PRESETS["micro"]
