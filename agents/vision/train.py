"""Train the VLM in two stages on frames from ``tools.vlm_data`` (CPU-sized; see the model card).

1. the vision encoder with its supervised reading heads (cells, counts, facing, light);
2. the projector + LoRA on SmolLM2 on (frame, question, answer) pairs, the encoder frozen (LLaVA's recipe:
   features first, then the language model learns to read them).

``python -m agents.vision.train --data data/vlm-frames --out runs/vlm`` writes ``OUT/encoder`` after stage 1
(a rerun with the same OUT skips that stage) and the whole VLM folder after stage 2. ``make vlm-checkpoint``
reproduces the shipped ``agents/adapters/embodia-vlm``.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents.vision.vlm import EmbodiaVLM, Projector, base_lm
from tools.lora import LoraSettings, add_lora
from tools.models.tile_encoder import VisionEncoder, batch_labels
from tools.train_state import warmup_cosine
from tools.vlm_data import FrameSet, qa_pairs


@dataclass
class VLMTrainConfig:
    """Args:
        encoder_epochs: passes over the frames for the encoder's heads.
        encoder_batch: frames per encoder step.
        encoder_lr: AdamW learning rate of the encoder.
        steps: projector + LoRA steps.
        batch: (frame, question, answer) pairs per step.
        lr: AdamW learning rate of projector and LoRA.
        rank: LoRA rank (attention projections).
        encoder_minutes: wall-clock budget of stage 1 (stops early; the learning rate decays over whichever
            of steps and time runs out first).
        minutes: wall-clock budget of stage 2, likewise.
        tiny: a 2-layer random LM instead of SmolLM2 (tests only).
        seed: seed of everything.
    """

    encoder_epochs: int = 4
    encoder_batch: int = 64
    encoder_lr: float = 2e-3
    steps: int = 300
    batch: int = 8
    lr: float = 1e-3
    rank: int = 8
    encoder_minutes: float = 4.0
    minutes: float = 8.0
    tiny: bool = False
    seed: int = 0


def _decay(optimizer: torch.optim.Optimizer, lr: float, step: int, steps: int, started: float, minutes: float) -> bool:
    """``tools.train_state.warmup_cosine`` over the share of steps or of time spent, whichever is larger;
    False once either is spent."""
    done = max(step / steps, (time.perf_counter() - started) / (60 * minutes))
    for group in optimizer.param_groups:
        group["lr"] = warmup_cosine(lr, 10, steps, max(step, round(min(done, 1.0) * steps)))
    return done < 1.0


def train_encoder(frames: FrameSet, cfg: VLMTrainConfig, log=print) -> VisionEncoder:
    torch.manual_seed(cfg.seed)
    encoder = VisionEncoder()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.encoder_lr)
    rng = np.random.default_rng(cfg.seed)
    steps = max(1, cfg.encoder_epochs * len(frames) // cfg.encoder_batch)
    started = time.perf_counter()
    for step in range(steps):
        if not _decay(optimizer, cfg.encoder_lr, step, steps, started, cfg.encoder_minutes):
            break
        index = rng.choice(len(frames), min(cfg.encoder_batch, len(frames)), replace=False)
        images, labels = batch_labels(frames, index)
        loss, parts = encoder.loss(images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"encoder step {step + 1}/{steps} loss {loss.item():.3f} "
                + " ".join(f"{k} {v:.3f}" for k, v in parts.items()) + f" · {time.perf_counter() - started:.0f} s")
    return encoder.eval()


def train_vlm(encoder: VisionEncoder, frames: FrameSet, cfg: VLMTrainConfig, log=print) -> EmbodiaVLM:
    torch.manual_seed(cfg.seed)
    lm, tokenizer = base_lm(cfg.tiny)
    lm.requires_grad_(False)
    projector = Projector(encoder.width, lm.config.hidden_size)
    projector.init_from_words(lm.get_input_embeddings(), tokenizer)
    lm = add_lora(lm, LoraSettings(rank=cfg.rank, alpha=2 * cfg.rank), seed=cfg.seed)
    vlm = EmbodiaVLM(encoder, projector, lm, tokenizer)
    params = [p for p in vlm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    rng = random.Random(cfg.seed)
    started = time.perf_counter()
    lm.train()
    for step in range(cfg.steps):
        if not _decay(optimizer, cfg.lr, step, cfg.steps, started, cfg.minutes):
            log(f"vlm: time budget of {cfg.minutes} min reached after {step} steps")
            break
        index = [rng.randrange(len(frames)) for _ in range(cfg.batch)]
        pairs = [qa_pairs(frames.reading(i), rng, 1)[0] for i in index]
        loss = vlm.loss(torch.from_numpy(frames.frames[index]), [q for q, _ in pairs], [a for _, a in pairs])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            log(f"vlm step {step + 1}/{cfg.steps} loss {loss.item():.3f} · {time.perf_counter() - started:.0f} s")
    return vlm.eval()


def train(data: Path, out: Path, cfg: VLMTrainConfig, log=print) -> Path:
    frames = FrameSet.load(data / "train.safetensors")
    log(f"{len(frames)} training frames from {len(set(frames.world.tolist()))} worlds")
    if (out / "encoder" / "model.safetensors").is_file():
        log(f"stage 1 done before: loading {out / 'encoder'}")
        encoder = VisionEncoder.from_pretrained(out / "encoder").eval()
    else:
        encoder = train_encoder(frames, cfg, log)
        encoder.save_pretrained(out / "encoder")
    vlm = train_vlm(encoder, frames, cfg, log)
    return vlm.save_pretrained(out, tiny=cfg.tiny, train=asdict(cfg), frames=len(frames),
                               command=f"python -m agents.vision.train --data {data} --out {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the embodia VLM (encoder, projector, LoRA).")
    parser.add_argument("--data", type=Path, required=True, help="folder from `python -m tools.vlm_data`")
    parser.add_argument("--out", type=Path, required=True)
    for name, value in asdict(VLMTrainConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value) if not isinstance(value, bool) else int,
                            default=value)
    args = vars(parser.parse_args(argv))
    data, out = args.pop("data"), args.pop("out")
    torch.set_num_threads(1)
    print(f"wrote {train(data, out, VLMTrainConfig(**args))}")


if __name__ == "__main__":
    main()
