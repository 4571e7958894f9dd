"""Train the RSSM world model on recorded Crafter episodes (DreamerV3's world-model loss).

    embodia train world-model --data data/world_model/train --preset tiny --steps 1500 --out runs/wm-tiny
    accelerate launch -m world_models.train --data ... (same loop, one process per device)

The loop reads top to bottom: config, data, model and optimiser through ``accelerate``, then
updates with periodic checkpoints (``tools.train_state``: model, optimiser, RNG and the sampler's
position, written atomically), so a killed run always leaves a complete checkpoint and ``resume``
continues from it exactly as the uninterrupted run would have. A
non-finite loss or gradient stops training at once, naming the step, and the last good checkpoint
stays on disk untouched.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tools import train_state
from tools.io import atomic_write_json
from world_models.config import RSSMConfig, preset
from world_models.data import SKILL_NAMES, SequenceSampler, load_episodes
from world_models.rssm import RSSMWorldModel, read_config

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the message names the step and the checkpoint that was kept."""


@dataclass
class TrainConfig:
    """One training run.

    Args:
        data: folder of episode shards (``world_models.data``) or a parquet episode dataset.
        out: run folder: ``checkpoint/`` (latest, with optimiser state) and ``model/`` (final weights).
        preset: model size: tiny, small or base.
        steps: optimiser updates in total (a resumed run continues to this number).
        batch_size: sequences per update.
        seq_len: frames per sequence (0: the preset's ``seq_len``).
        lr: Adam learning rate.
        grad_clip: gradient-norm clip.
        checkpoint_every: updates between checkpoints.
        seed: seeds torch, numpy and the sequence sampler.
        resume: continue from ``out/checkpoint`` when it exists.
        device: "cpu", "cuda" or "auto" (accelerate places the model; ``accelerate launch`` for several).
        mixed_precision: "no", "bf16" or "fp16" (accelerate autocast).
        state_scale: loss weight of the state-vector head (0: keep the preset's or the checkpoint's). The
            image loss sums 12,288 pixels and drowns the 42 inventory/achievement values that imagination
            checks subgoals with, so a second stage with a higher weight sharpens them.
        threads: torch CPU threads (0: torch's default). On a shared 2-core machine one thread was
            6-10x faster per update than two, which spin against the other processes.
    """

    data: Path
    out: Path
    preset: str = "tiny"
    steps: int = 1500
    batch_size: int = 16
    seq_len: int = 0
    lr: float = 6e-4
    grad_clip: float = 100.0
    checkpoint_every: int = 250
    seed: int = 0
    resume: bool = False
    device: str = "cpu"
    mixed_precision: str = "no"
    state_scale: float = 0.0
    threads: int = 1

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1 or self.seq_len < 0:
            raise ValueError(f"TrainConfig: steps, batch_size, checkpoint_every must be >= 1, seq_len >= 0: {self}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.mixed_precision must be no, bf16 or fp16, got {self.mixed_precision=}")


# --- checkpoints ---
def save_checkpoint(folder: Path, model: RSSMWorldModel, optimizer: torch.optim.Optimizer, step: int,
                    history: list[dict[str, float]], sampler: SequenceSampler,
                    samplers: list[dict[str, Any]] | None = None) -> None:
    """Model, optimiser, RNG and the sampler's position into ``folder`` (``tools.train_state``: atomic).

    ``samplers``: under DDP, every rank's sampler position (rank order), so each rank resumes its own stream.
    """
    extra: dict[str, Any] = {"history": history, "sampler": sampler.rng.bit_generator.state}
    if samplers is not None and len(samplers) > 1:
        extra["samplers"] = samplers
    train_state.save(folder, step=step, optimizer=optimizer, save_model=model.save_pretrained, extra=extra)


def resume_model(folder: Path, expect: RSSMConfig, state_scale: float) -> RSSMWorldModel:
    """The checkpoint's model, built with ``state_scale`` (when non-zero) in its config from the start.

    The hub mixin saves the config the model was *constructed* with, so the override must go into the
    constructor: assigning ``model.config`` afterwards trained with the new weight but saved the old one.
    """
    stored = read_config(folder)
    if stored.mismatch(expect):
        raise ValueError(f"world-model checkpoint {folder} was trained for a different world: "
                         f"{'; '.join(stored.mismatch(expect))} (checkpoint vs expected)")
    config = replace(stored, state_scale=state_scale) if state_scale else stored
    return RSSMWorldModel.from_pretrained(str(folder), config=config).train()


def _rank_sampler(extra: dict[str, Any], rank: int, processes: int, folder: Path) -> dict[str, Any]:
    """This rank's saved sampler position; a checkpoint of another process count cannot be split or merged."""
    samplers = extra.get("samplers") or [extra["sampler"]]
    if len(samplers) != processes:
        raise ValueError(f"world-model checkpoint {folder} was written by {len(samplers)} process(es); resume it with "
                         f"--num_processes {len(samplers)} (now {processes}), or start a new --out")
    return samplers[rank]


# --- the loop ---
def train(cfg: TrainConfig, console: Console | None = None,
          on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """Train to ``cfg.steps`` updates; returns the last logged metrics plus timing."""
    console = console or Console()
    accelerator = Accelerator(cpu=cfg.device == "cpu", mixed_precision=cfg.mixed_precision)
    set_seed(cfg.seed + accelerator.process_index)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # --- data ---
    episodes = load_episodes(cfg.data)
    overrides = {k: v for k, v in (("seq_len", cfg.seq_len), ("state_scale", cfg.state_scale)) if v}
    model_cfg = preset(cfg.preset, skills=SKILL_NAMES, device="cpu", **overrides)
    sampler = SequenceSampler(episodes, model_cfg.seq_len, seed=cfg.seed + accelerator.process_index)

    # --- model and optimiser ---
    checkpoint = cfg.out / CHECKPOINT_DIR
    if cfg.resume and accelerator.is_main_process:
        train_state.recover(checkpoint)  # a kill's leftovers settled once, by one process
    accelerator.wait_for_everyone()
    resuming = cfg.resume and train_state.read_state(checkpoint) is not None
    model = resume_model(checkpoint, model_cfg, cfg.state_scale) if resuming else RSSMWorldModel(model_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-6)
    step, history = 0, []
    if resuming:
        state = train_state.restore(checkpoint, optimizer)
        step, history = state["step"], state["extra"]["history"]
        sampler.rng.bit_generator.state = _rank_sampler(state["extra"], accelerator.process_index,
                                                        accelerator.num_processes, checkpoint)
        console.print(f"resuming from {checkpoint} at update {step}")
    for group in optimizer.param_groups:  # the checkpoint restores its own rate; a resumed stage may change it
        group["lr"] = cfg.lr
    saved = step
    model, optimizer = accelerator.prepare(model, optimizer)
    if accelerator.is_main_process:
        console.print(f"world model {cfg.preset}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
                      f"{len(sampler.episodes)} episodes / {sampler.frames} frames, batch {cfg.batch_size} x "
                      f"{model_cfg.seq_len}")

    # --- updates ---
    metrics: dict[str, float] = {}
    started, first_step = time.perf_counter(), step
    columns = (TextColumn("[bold]world model"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=console, disable=not accelerator.is_main_process) as progress:
        task = progress.add_task("train", total=cfg.steps, completed=step, info="")
        while step < cfg.steps:
            if accelerator.num_processes > 1:  # each rank its own latent noise, a pure function of the step, so
                # a resume repeats it (the checkpoint holds the main process's RNG only)
                torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + accelerator.process_index)
            batch = sampler.sample(cfg.batch_size)
            with accelerator.autocast():
                loss, metrics = model(batch)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"loss became {float(loss.detach())} at update {step + 1}; stopped. "
                                         f"Last good checkpoint: {checkpoint} (update {saved})")
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if not torch.isfinite(torch.as_tensor(grad_norm)):
                raise NonFiniteLossError(f"gradient norm became {float(grad_norm)} at update {step + 1}; "
                                         f"stopped. Last good checkpoint: {checkpoint} (update {saved})")
            optimizer.step()
            step += 1
            metrics = {"step": step, **metrics, "grad_norm": float(grad_norm)}
            progress.update(task, completed=step, info=f"loss {metrics['loss']:.1f} image {metrics['image']:.1f} "
                                                       f"state {metrics['state']:.2f}")
            if step % 25 == 0 or step == cfg.steps:
                history.append(metrics)
                if on_log is not None:
                    on_log(step, metrics)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                samplers = gather_object([sampler.rng.bit_generator.state])  # every rank takes part
                if accelerator.is_main_process:
                    save_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, step, history, sampler,
                                    samplers)
                saved = step
    elapsed = time.perf_counter() - started
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        final.save_pretrained(cfg.out / MODEL_DIR)
        atomic_write_json(cfg.out / "train_config.json", asdict(cfg), indent=1, default=str)
    return {**metrics, "seconds_per_update": elapsed / max(1, step - first_step)}


def main(argv: list[str] | None = None) -> None:
    """``accelerate launch -m world_models.train --data ... --out ...`` entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(TrainConfig(data=Path("."), out=Path("."))).items():
        kind = type(value) if not isinstance(value, Path) else Path
        if kind is bool:
            parser.add_argument(f"--{name.replace('_', '-')}", action="store_true")
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value,
                                required=name in ("data", "out"))
    print(train(TrainConfig(**vars(parser.parse_args(argv)))))


if __name__ == "__main__":
    main()
