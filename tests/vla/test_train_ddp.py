"""The VLA trainer under DDP: two real processes over gloo (``tests.ddp.spawn_launcher``) on real collected rows.

Two processes at batch 4 see the rows one process sees at batch 8 (each row once per epoch across ranks), so
they train to nearly the same weights — not exactly: each rank draws its own diffusion noise. A two-process
run resumed from its checkpoint repeats the uninterrupted two-process run exactly: no row skipped or repeated.
"""

from dataclasses import replace

import torch
from safetensors.torch import load_file

from tests.ddp import spawn_launcher
from tools import train_state
from vla.base import WEIGHTS_FILE
from vla.data import load_frames, split_by_episode
from vla.hybrid import HybridConfig
from vla.train import CHECKPOINT_DIR, TrainConfig, epoch_loader, train

TINY = HybridConfig(d_model=32, n_layers=1, n_heads=2)
#: Largest relative L2 distance between the 1-process and 2-process weights after STEPS steps (measured here: 0.013;
#: the difference is the diffusion noise, which each rank draws for its own half of the batch).
TOLERANCE = 0.03
STEPS = 6


def config(dataset, out, **overrides) -> TrainConfig:
    return TrainConfig(**{"data": str(dataset), "out": str(out), "policy": TINY, "steps": STEPS, "batch_size": 8,
                          "checkpoint_every": 3, "val_every": 5, "eval_seeds": (), "lr": 0.1, "warmup_steps": 100,
                          **overrides})  # in warm-up throughout: the lr of a step does not depend on steps


def _train(cfg: TrainConfig) -> None:
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a fresh process: no one-process state left over
    torch.set_num_threads(1)
    train(cfg)


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(folder / WEIGHTS_FILE)


def test_ranks_split_each_global_batch_and_a_resume_skips_exactly_the_steps_made(tiny_dataset):
    frames, _ = split_by_episode(load_frames(tiny_dataset, TINY.chunk_size, TINY.max_instruction_len), 5)
    cfg = config(tiny_dataset, "unused", batch_size=4)
    single = [b["action"] for b in epoch_loader(frames, replace(cfg, batch_size=8), epoch=1)]
    ranks = [[b["action"] for b in epoch_loader(frames, cfg, 1, rank=r, processes=2)] for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == len(frames) // 8
    for step, rows in enumerate(single):  # the two halves of each step are the one-process batch
        assert torch.equal(torch.cat([ranks[0][step], ranks[1][step]]), rows)
    index = torch.arange(len(frames))  # every row at most once per epoch across ranks
    frames.action = index
    seen = [i for r in (0, 1) for b in epoch_loader(frames, cfg, 1, rank=r, processes=2) for i in b["action"].tolist()]
    assert len(seen) == len(set(seen)) == (len(frames) // 8) * 8
    resumed = [b["action"].tolist() for b in epoch_loader(frames, cfg, 1, skip=2, rank=1, processes=2)]
    assert resumed == [b["action"].tolist() for b in epoch_loader(frames, cfg, 1, rank=1, processes=2)][2:]


def test_two_processes_match_one_at_the_same_global_batch_and_resume_exactly(tiny_dataset, tmp_path):
    train(config(tiny_dataset, tmp_path / "one"))
    spawn_launcher(_train, (config(tiny_dataset, tmp_path / "two", batch_size=4),), num_processes=2)
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    distance = torch.cat([(one[k] - two[k]).flatten() for k in one]).norm()
    size = torch.cat([one[k].flatten() for k in one]).norm()
    assert distance / size < TOLERANCE, f"relative distance {distance / size:.4f}"

    half = config(tiny_dataset, tmp_path / "resumed", batch_size=4, steps=STEPS // 2)  # stopped mid-epoch
    spawn_launcher(_train, (half,), num_processes=2)
    assert train_state.read_state(tmp_path / "resumed" / CHECKPOINT_DIR)["step"] == STEPS // 2
    spawn_launcher(_train, (replace(half, steps=STEPS, resume=True),), num_processes=2)
    assert train_state.read_state(tmp_path / "resumed" / CHECKPOINT_DIR)["step"] == STEPS
    resumed = _weights(tmp_path / "resumed")
    for key in two:
        torch.testing.assert_close(resumed[key], two[key], rtol=0, atol=1e-6)
