"""LoRA fine-tuning machinery shared by every `embodia finetune` target (planner now, VLA backbones next).

What is generic lives here; what a target learns from (prompts, targets, metrics) lives with it.

* Examples are token ids with a prompt/target boundary; the loss covers target tokens only.
* Sequence packing: a batch is one row of several examples back to back, positions restarting at
  each example. transformers turns restarting `position_ids` (and no attention mask) into a
  block-diagonal causal mask, so no token attends across examples and no compute goes to padding.
* Logits only where they predict target tokens (`logits_to_keep` with indices): the vocabulary
  projection is about a fifth of this model's FLOPs per position, and prompts are ~95% of tokens.
* An accelerate loop: the same code runs on CPU, one GPU, or under `accelerate launch` (DDP).
* Checkpoints are `tools.train_state` folders written to a temp name and renamed (a killed run never
  leaves a half checkpoint): the adapter (peft, safetensors), the optimizer and RNG state (safetensors,
  never pickle) and `train_state.json`. The data order is a pure function of (seed, epoch), and the
  learning rate a pure function of the step, so `resume` continues exactly where the run stopped.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from peft import PeftModel
from safetensors.torch import load_file

from agents.llm.adapters import ADAPTER_WEIGHTS
from tools import train_state
from tools.lora import LoraSettings
from tools.train_state import warmup_cosine

CHECKPOINTS = "checkpoints"
STATE_FILE = train_state.STATE_FILE
_RESUMABLE = ("steps", "eval_every", "save_every", "keep_checkpoints")


@dataclass
class TrainConfig:
    """One training run.

    Args:
        steps: optimizer steps.
        lr: peak AdamW learning rate (linear warm-up, then cosine decay to 10%).
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        batch_tokens: tokens per step, the packing budget (examples are packed back to back, no padding).
        eval_every: steps between held-out loss evaluations.
        save_every: steps between checkpoints.
        keep_checkpoints: newest checkpoints kept on disk.
        seed: data order and LoRA initialisation seed.
        max_grad_norm: gradient-norm clip.
        lora: which weights get low-rank updates.
    """

    steps: int = 100
    lr: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    batch_tokens: int = 2048
    eval_every: int = 25
    save_every: int = 25
    keep_checkpoints: int = 2
    seed: int = 0
    max_grad_norm: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 10%: a function of the step, so resume needs no scheduler state."""
        return warmup_cosine(self.lr, self.warmup_steps, self.steps, step)


@dataclass
class TokenizedExample:
    """Token ids of prompt + target; the loss covers ids[n_prompt:]."""

    ids: list[int]
    n_prompt: int

    def __post_init__(self) -> None:
        if not 0 < self.n_prompt < len(self.ids):
            raise ValueError(f"an example needs a prompt and a target (n_prompt={self.n_prompt}, len={len(self.ids)})")


@dataclass
class Batch:
    """Packed examples: one row of tokens, restarting positions, and where the loss is taken."""

    input_ids: torch.Tensor  # (1, T)
    position_ids: torch.Tensor  # (1, T)
    predictors: torch.Tensor  # (N,) positions whose logits predict a target token
    labels: torch.Tensor  # (N,) the target token each predicts
    examples: int

    @property
    def tokens(self) -> int:
        return self.input_ids.shape[1]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.input_ids.to(device), self.position_ids.to(device), self.predictors.to(device),
                     self.labels.to(device), self.examples)


def pack(examples: Sequence[TokenizedExample], max_tokens: int) -> list[Batch]:
    """Greedy packing in the given order into rows of at most `max_tokens` (a longer example gets its own)."""
    batches, row = [], []
    for example in examples:
        if row and sum(len(e.ids) for e in row) + len(example.ids) > max_tokens:
            batches.append(_packed(row))
            row = []
        row.append(example)
    if row:
        batches.append(_packed(row))
    return batches


def _packed(row: Sequence[TokenizedExample]) -> Batch:
    ids, positions, predictors, labels = [], [], [], []
    for example in row:
        offset = len(ids)
        ids.extend(example.ids)
        positions.extend(range(len(example.ids)))
        predictors.extend(range(offset + example.n_prompt - 1, offset + len(example.ids) - 1))
        labels.extend(example.ids[example.n_prompt:])
    return Batch(torch.tensor([ids]), torch.tensor([positions]), torch.tensor(predictors), torch.tensor(labels),
                 len(row))


def epoch_batches(examples: Sequence[TokenizedExample], config: TrainConfig, epoch: int) -> list[Batch]:
    """The batches of one epoch: examples shuffled by (seed, epoch), then packed."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(len(examples), generator=generator).tolist()
    return pack([examples[i] for i in order], config.batch_tokens)


def batch_stream(examples: Sequence[TokenizedExample], config: TrainConfig, start_step: int = 0,
                 shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
    """Batches for steps start_step, start_step+1, …: the same sequence whether or not the run was resumed.
    `shard` = (process index, process count) deals whole steps' batches round-robin to DDP processes."""
    index, count = shard
    step, epoch = 0, 0
    while True:
        batches = epoch_batches(examples, config, epoch)
        if len(batches) < count:
            raise ValueError(f"{len(batches)} batches per epoch cannot feed {count} processes; lower batch_tokens")
        usable = len(batches) - len(batches) % count
        for i in range(index, usable, count):
            if step >= start_step:
                yield batches[i]
            step += 1
        epoch += 1


def batch_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the batch's target tokens, computing logits only where they are needed."""
    out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, logits_to_keep=batch.predictors,
                use_cache=False)
    return torch.nn.functional.cross_entropy(out.logits[0].float(), batch.labels)


@torch.no_grad()
def eval_loss(model: torch.nn.Module, batches: Sequence[Batch], device: torch.device | str = "cpu") -> float:
    """Token-weighted mean target loss over `batches`."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        n = len(batch.labels)
        total += batch_loss(model, batch.to(device)).item() * n
        count += n
    model.train(was_training)
    return total / max(1, count)


# ------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(directory: Path, model: PeftModel, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any],
                    keep: int) -> Path:
    """Write `directory/checkpoints/step-N` atomically (``tools.train_state``); keep the newest `keep`."""
    root = directory / CHECKPOINTS
    final = train_state.save(root / f"step-{trainer_state['step']:07d}", step=trainer_state["step"],
                             optimizer=optimizer, save_model=model.save_pretrained, extra=trainer_state)
    for old in _checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(directory: Path) -> list[Path]:
    """The complete `step-N` checkpoints, oldest first; a copy left by a kill mid-save is recovered first."""
    names = sorted({p.name.split(".")[0] for p in (directory / CHECKPOINTS).glob("step-*")})
    found = []
    for name in names:
        try:
            if (folder := train_state.recover(directory / CHECKPOINTS / name)) is not None:
                found.append(folder)
        except train_state.CorruptCheckpointError:
            continue  # a save killed before its files were complete; the previous step's checkpoint stands
    return found


def latest_checkpoint(directory: Path) -> Path | None:
    found = _checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(checkpoint: Path, model: PeftModel, optimizer: torch.optim.Optimizer,
                    config: TrainConfig) -> dict[str, Any]:
    """Restore adapter weights, optimizer and RNG from `checkpoint`; refuse one made with another config.

    The step budget and eval/save cadence may change on resume; anything else shapes the trajectory.
    """
    saved = (train_state.read_state(checkpoint) or {}).get("extra", {}).get("config", {})
    train_state.check_resumable(checkpoint, saved, asdict(config), _RESUMABLE)
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, load_file(checkpoint / ADAPTER_WEIGHTS))
    return train_state.restore(checkpoint, optimizer)["extra"]


# ------------------------------------------------------------------------------------------ training
@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    tokens: int
    seconds: float
    eval_loss: float | None = None


@dataclass
class TrainResult:
    history: list[StepLog]
    train_tokens: int  # tokens processed in this process's steps (prompt + target)
    train_seconds: float  # time inside training steps (no eval, no checkpoints)

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds else 0.0


def train(model: PeftModel, train_set: Sequence[TokenizedExample], eval_set: Sequence[TokenizedExample],
          config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          on_step: Callable[[StepLog], None] | None = None, stop_after: int | None = None,
          accelerator: Accelerator | None = None) -> TrainResult:
    """Train the LoRA weights of `model` for `config.steps` optimizer steps (or until `stop_after`).

    `resume` continues from the newest checkpoint in `out_dir` (the data order and learning rate
    depend only on the step). Returns the per-step history of this invocation.
    """
    out_dir = Path(out_dir)
    accelerator = accelerator or Accelerator()
    torch.manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if resume and accelerator.is_main_process:
        latest_checkpoint(out_dir)  # a kill's leftovers settled once, by one process
    accelerator.wait_for_everyone()
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if resume and checkpoint is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {out_dir / CHECKPOINTS}")
    if checkpoint is not None:
        start = load_checkpoint(checkpoint, model, optimizer, config)["step"]
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    eval_batches = pack(list(eval_set), config.batch_tokens)
    stream = batch_stream(train_set, config, start, (accelerator.process_index, accelerator.num_processes))
    history: list[StepLog] = []
    tokens, seconds = 0, 0.0
    last = min(config.steps, stop_after if stop_after is not None else config.steps)
    for step in range(start, last):
        began = time.perf_counter()
        batch = next(stream).to(accelerator.device)
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = batch_loss(model, batch)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - began
        tokens += batch.tokens
        seconds += elapsed
        log = StepLog(step + 1, accelerator.reduce(loss.detach(), "mean").item(), lr, batch.tokens, elapsed)
        if eval_batches and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps):
            log.eval_loss = eval_loss(model, eval_batches, accelerator.device)
        if (step + 1) % config.save_every == 0 or step + 1 == last:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                state = {"step": step + 1, "config": asdict(config), "loss": log.loss}
                save_checkpoint(out_dir, accelerator.unwrap_model(model), optimizer, state, config.keep_checkpoints)
        history.append(log)
        if on_step is not None:
            on_step(log)
    return TrainResult(history, tokens, seconds)
