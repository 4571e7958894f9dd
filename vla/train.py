"""Train a VLA policy on an episode dataset: ``embodia train vla --data DIR --out DIR``.

One 🤗 accelerate loop, so the same script runs on this CPU and under ``accelerate launch`` on
GPUs. Checkpoints (``OUT/checkpoint/``: policy + optimizer state + RNG, all safetensors/JSON, no
pickle) are written atomically every ``checkpoint_every`` steps; ``resume`` continues from the
last one with the same batches it would have seen (``tools.train_state``), and refuses one made with
another config (learning rate, batch size, architecture, ...). The run ends with a validation pass and a
closed-loop evaluation on held-out seeds — per-skill success in Crafter (``vla.evaluate``), per-task
success on Meta-World for continuous-action policies (``vla.evaluate_metaworld``) — written to
``OUT/metrics.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from tools import train_state
from tools.episodes import write_json_atomic
from tools.train_state import warmup_cosine
from vla.base import WEIGHTS_FILE, Policy, SpaceMismatchError
from vla.data import Frames, load_frames, split_by_episode
from vla.evaluate import compare_skills, mean_success
from vla.hybrid import HybridConfig
from vla.registry import entry_for_config, new_policy
from vla.skills import LearnedSkillRunner

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = train_state.STATE_FILE
#: TrainConfig fields a resumed run may change; any other difference would mix two runs.
RESUMABLE = ("out", "steps", "checkpoint_every", "eval_seeds", "eval_budget", "resume")


@dataclass
class TrainConfig:
    """Args:
    data: episode dataset folder (``embodia collect``).
    out: output folder: final policy, ``checkpoint/``, ``metrics.json``.
    policy: the HybridVLA config.
    steps: optimizer steps.
    batch_size: rows per step per process (the global batch is batch_size x processes).
    lr: peak AdamW learning rate (linear warmup, cosine decay to 10%).
    warmup_steps: linear warmup length.
    weight_decay: AdamW weight decay.
    seed: seeds weights, batches and noise.
    val_every: every ``val_every``-th episode is held out for validation.
    checkpoint_every: steps between checkpoints.
    eval_seeds: held-out world seeds for the closed-loop skill/task evaluation (empty: skip it).
    eval_budget: env steps per skill attempt (Crafter) or per episode (Meta-World) in that evaluation.
    resume: continue from ``out/checkpoint`` when it exists.
    max_rows: train and validate on the dataset's first N rows only (0 = all): short runs of slow backbones.
    init: a checkpoint folder whose weights the run starts from (fine-tuning, e.g. a DAgger round); ``policy``
        must be its config. Empty: fresh weights.
    vision_init: a trained tile encoder folder (``tools.models.tile_encoder``; the VLM's is
        ``agents/adapters/embodia-vlm/encoder``) copied into a fresh ``vision="tiles"`` policy; ignored with
        ``init``, whose weights include their encoder.
    """

    data: str = "data/crafter-skills"
    out: str = "runs/vla/hybrid-crafter"
    policy: HybridConfig = field(default_factory=HybridConfig)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    val_every: int = 20
    checkpoint_every: int = 500
    eval_seeds: tuple[int, ...] = (1000, 1001, 1002)
    eval_budget: int = 150
    resume: bool = False
    max_rows: int = 0
    init: str = ""
    vision_init: str = ""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "eval_budget"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)=}")
        if self.max_rows < 0:
            raise ValueError(f"max_rows must be >= 0, got {self.max_rows=}")
        if self.vision_init and getattr(self.policy, "vision", "") != "tiles":
            raise ValueError(f"vision_init needs a policy with vision='tiles' (--vision tiles); this one reads "
                             f"{getattr(self.policy, 'vision', 'no tile encoder')!r}")
        if self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError(f"need lr > 0 and warmup_steps >= 0, got {self.lr=} {self.warmup_steps=}")


# --- helpers -----------------------------------------------------------------------------
def save_checkpoint(out: Path, policy: Policy, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    state: dict[str, Any]) -> None:
    """``out/checkpoint``: policy, optimizer, RNG, step and this run's config (``tools.train_state``: atomic)."""
    train_state.save(out / CHECKPOINT_DIR, step=state["step"], optimizer=optimizer, save_model=policy.save_pretrained,
                     extra={**state, "config": asdict(cfg)})


def load_checkpoint(out: Path, policy: Policy, optimizer: torch.optim.Optimizer,
                    cfg: TrainConfig) -> dict[str, Any]:
    """Restore policy weights, optimizer moments and RNG; returns the trainer state (``step``, ...).

    Raises:
        tools.train_state.ResumeMismatchError: the checkpoint was made with another config.
    """
    folder = out / CHECKPOINT_DIR
    saved = (train_state.read_state(folder) or {}).get("extra", {}).get("config", {})
    train_state.check_resumable(folder, saved, asdict(cfg), RESUMABLE)
    policy.load_weights(folder / WEIGHTS_FILE)  # in place: an LLM backbone's base is not rebuilt
    extra = train_state.restore(folder, optimizer)["extra"]
    extra.pop("config")
    return extra


def epoch_loader(data: Frames, cfg: TrainConfig, epoch: int, skip: int = 0, rank: int = 0,
                 processes: int = 1) -> torch.utils.data.DataLoader:
    """Process ``rank``'s batches of one epoch from step ``skip`` on; the order depends only on (seed, epoch).

    Step ``s`` of an epoch consumes rows ``order[s*G:(s+1)*G]`` of one shuffled order, ``G = batch_size x
    processes`` (the global batch), and rank ``r`` takes its ``batch_size`` slice of them: every row is seen
    at most once per epoch across ranks, a resumed run skips exactly the steps it made, and N processes at
    ``batch_size`` see the rows one process sees at ``batch_size x N``. (One draw precedes the permutation,
    as in a shuffling DataLoader, so one-process runs keep the orders they always had.)
    """
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    torch.empty((), dtype=torch.int64).random_(generator=generator)  # the DataLoader's base-seed draw
    order = torch.randperm(len(data), generator=generator)
    size, step_rows = cfg.batch_size, cfg.batch_size * processes
    batches = [order[s * step_rows + rank * size:][:size].tolist() for s in range(skip, len(data) // step_rows)]
    # its own generator: a loader without one draws its base seed from the global RNG, the policy's noise
    return torch.utils.data.DataLoader(data, batch_sampler=batches, generator=torch.Generator())


@torch.no_grad()
def validate(policy: Policy, data: Frames, batch_size: int = 256) -> dict[str, float]:
    """Mean loss terms and each head's (ar, diffusion, ensemble) action accuracy on held-out rows, or for
    continuous actions each head's mean squared action error."""
    if hasattr(policy, "validate"):  # a family with its own held-out metrics (vla.univla)
        return policy.validate(data, batch_size)
    policy.eval()
    policy.reset()
    sums: dict[str, float] = {}
    for start in range(0, len(data), batch_size):
        batch = data[slice(start, start + batch_size)]
        _, info = policy(batch)
        obs, texts = {"image": batch["image"].numpy(), "state": batch["state"].numpy()}, data.texts[start:][:batch_size]
        n = len(batch["action"])
        if policy.config.continuous:
            actions = policy.predict_actions(obs, texts)
            for head in ("ar", "diffusion", "ensemble"):
                info[f"action_mse_{head}"] = (actions[head] - batch["action"]).square().mean().item()
        else:
            probs = policy.predict_probs(obs, texts)
            for head in ("ar", "diffusion", "ensemble"):
                info[f"accuracy_{head}"] = (probs[head].argmax(-1) == batch["action"]).float().mean().item()
        for key, value in info.items():
            sums[key] = sums.get(key, 0.0) + value * n
    return {key: round(value / len(data), 4) for key, value in sums.items()}


def check_data_matches_policy(frames: Frames, policy: HybridConfig, data: str) -> None:
    """Raise :class:`SpaceMismatchError` naming both when the dataset's state or actions differ from the config."""
    if frames.state.shape[1] != policy.state_dim:
        raise SpaceMismatchError(f"dataset {data} has state_dim {frames.state.shape[1]} != policy config "
                                 f"state_dim {policy.state_dim}")
    data_space = "continuous" if frames.action.is_floating_point() else "discrete"
    if data_space != policy.action_space or (policy.continuous and frames.action.shape[-1] != policy.action_dim):
        shape = f" of dim {frames.action.shape[-1]}" if data_space == "continuous" else ""
        raise SpaceMismatchError(f"dataset {data} has {data_space} actions{shape} != policy config "
                                 f"action_space={policy.action_space!r} (action_dim={policy.action_dim}, "
                                 f"num_actions={policy.num_actions})")


# --- training ----------------------------------------------------------------------------
def train(cfg: TrainConfig, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train, checkpoint, evaluate; returns the metrics also written to ``out/metrics.json``."""
    family = entry_for_config(cfg.policy).policy_class()
    if hasattr(family, "train_stages") and getattr(cfg.policy, "stage", None) == "all":
        return family.train_stages(cfg, on_step)  # a staged family (vla.univla): each stage is one call of train
    accelerator = Accelerator()
    set_seed(cfg.seed)
    out = Path(cfg.out)
    frames = (family.training_frames(cfg) if hasattr(family, "training_frames")  # its own rows (frame pairs, ...)
              else load_frames(cfg.data, cfg.policy.chunk_size, cfg.policy.max_instruction_len))
    if cfg.max_rows:
        frames = frames.subset(torch.arange(len(frames)) < cfg.max_rows)
    check_data_matches_policy(frames, cfg.policy, cfg.data)
    train_data, val_data = split_by_episode(frames, cfg.val_every)
    # the family is the config's type (vla.registry); the checkpoint records the instructions it learned
    policy = new_policy(replace(cfg.policy, instructions=tuple(sorted(set(frames.texts)))))
    if cfg.init:
        policy.load_weights(Path(cfg.init) / WEIGHTS_FILE)
    elif cfg.vision_init:
        policy.load_vision_encoder(cfg.vision_init)
    params = [p for p in policy.parameters() if p.requires_grad]  # all of them but an LLM backbone's base
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"step": 0, "train_seconds": 0.0, "samples": 0}
    if cfg.resume and accelerator.is_main_process:
        train_state.recover(out / CHECKPOINT_DIR)  # a kill's leftovers settled once, by one process
    accelerator.wait_for_everyone()
    if cfg.resume and train_state.read_state(out / CHECKPOINT_DIR) is not None:
        state = load_checkpoint(out, policy, optimizer, cfg)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    rank, processes = accelerator.process_index, accelerator.num_processes
    steps_per_epoch = len(train_data) // (cfg.batch_size * processes)
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_data)} training rows cannot fill one global batch of {cfg.batch_size} x "
                         f"{processes} processes; lower batch_size")
    step, info = state["step"], {}
    while step < cfg.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        policy.train()
        for batch in epoch_loader(train_data, cfg, epoch, skip, rank, processes):
            started = time.perf_counter()
            batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            if processes > 1:  # each rank its own noise, a pure function of the step: a resume repeats it exactly
                torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + rank)
            for group in optimizer.param_groups:
                group["lr"] = warmup_cosine(cfg.lr, cfg.warmup_steps, cfg.steps, step)
            with accelerator.autocast():
                loss, info = policy(batch)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["samples"] += cfg.batch_size * accelerator.num_processes
            state["train_seconds"] += time.perf_counter() - started
            if on_step is not None and accelerator.is_main_process:
                on_step(step, info)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                state["step"] = step
                if accelerator.is_main_process:
                    save_checkpoint(out, accelerator.unwrap_model(policy), optimizer, cfg, state)
            if step >= cfg.steps:
                break
    # --- eval ----------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    metrics: dict[str, Any] = {"config": asdict(cfg), "train_rows": len(train_data), "val_rows": len(val_data),
                               "train_samples_per_s": round(state["samples"] / max(state["train_seconds"], 1e-9), 1),
                               "last_train_step": info}
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(policy).eval()
        final.save_pretrained(out)
        metrics["validation"] = validate(final, val_data)
        if cfg.eval_seeds and final.config.continuous:
            from vla.evaluate_metaworld import compare_tasks, tasks_for_instructions  # mujoco only when needed

            tasks = compare_tasks({"learned": final}, tasks_for_instructions(set(frames.texts)), cfg.eval_seeds,
                                  cfg.eval_budget)
            metrics["tasks"] = tasks
            metrics["mean_task_success"] = {label: round(mean_success(t), 3) for label, t in tasks.items()}
        elif cfg.eval_seeds:
            skills = compare_skills({"learned": LearnedSkillRunner(final)}, cfg.eval_seeds, cfg.eval_budget)
            metrics["skills"] = skills
            metrics["mean_skill_success"] = {label: round(mean_success(s), 3) for label, s in skills.items()}
        write_json_atomic(out / "metrics.json", metrics)
    return metrics
