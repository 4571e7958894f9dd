"""Benchmark of the shipped HybridVLA Crafter policy: skills, the AR/diffusion ablation, speed, memory.

    python -m evals.bench_vla --seeds 2000-2001 --budget 100 --out runs/bench/vla.json

- per-skill success on held-out worlds (seeds never collected) for the learned policy in each
  inference mode — collaborative ensemble, AR head only, diffusion head only (one checkpoint, so
  the same data and training budget) — and for the scripted expert from the same world states
  (``vla.evaluate.compare_skills``);
- actions/s at batch 1 for each mode (the diffusion modes include all DDIM steps);
- training samples/s (forward + backward + AdamW on batches of real observations) and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from evals.expert_skills import parse_seeds
from tools.envs.crafter import CrafterEnv
from tools.episodes import write_json_atomic
from vla.evaluate import compare_skills, mean_success
from vla.hybrid import HybridVLAPolicy, tokenize_instructions
from vla.hybrid.configuration_hybrid import MODES
from vla.skills import DEFAULT_CHECKPOINT, LearnedSkillRunner


def real_observations(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` observations from a random walk in a real world: (n, 64, 64, 3) images, (n, 42) states."""
    env = CrafterEnv(seed=seed)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    images, states = [], []
    for _ in range(n):
        images.append(obs["image"])
        states.append(obs["state"])
        obs = env.step(int(rng.integers(0, 17)))[0]
    return {"image": np.stack(images), "state": np.stack(states)}


def actions_per_second(policy: HybridVLAPolicy, obs: dict[str, np.ndarray], n: int) -> float:
    policy.reset()
    frames = [{k: v[i % len(v)] for k, v in obs.items()} for i in range(n)]
    policy.act(frames[0], "collect wood")  # warm-up
    start = time.perf_counter()
    for frame in frames:
        policy.act(frame, "collect wood")
    return n / (time.perf_counter() - start)


def train_samples_per_second(checkpoint: Path, obs: dict[str, np.ndarray], steps: int, batch_size: int) -> float:
    policy = HybridVLAPolicy.from_pretrained(checkpoint).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = {"image": torch.from_numpy(obs["image"][:batch_size]),
             "state": torch.from_numpy(obs["state"][:batch_size]),
             "instruction": tokenize_instructions(["collect wood"] * batch_size, policy.config.max_instruction_len),
             "action": torch.randint(0, 17, (batch_size, policy.config.chunk_size))}
    start = None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # step 0 is warm-up
        loss, _ = policy(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--seeds", default="2000-2001", help="held-out world seeds (collection used 0-92)")
    parser.add_argument("--budget", type=int, default=100, help="env steps per skill attempt")
    parser.add_argument("--speed-actions", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="runs/bench/vla.json")
    args = parser.parse_args(argv)
    console = Console()
    seeds = parse_seeds(args.seeds)
    policies = {mode: HybridVLAPolicy.from_pretrained(args.checkpoint) for mode in MODES}
    for mode, policy in policies.items():
        policy.config.mode = mode
    obs = real_observations(max(args.batch_size, 64))
    speed = {mode: round(actions_per_second(policy, obs, args.speed_actions), 1) for mode, policy in policies.items()}
    train_speed = round(train_samples_per_second(Path(args.checkpoint), obs, args.train_steps, args.batch_size), 1)
    with Progress(console=console) as progress:
        task = progress.add_task("skills on held-out worlds", total=len(seeds))
        skills = compare_skills({mode: LearnedSkillRunner(p) for mode, p in policies.items()}, seeds, args.budget,
                                on_seed=lambda _: progress.advance(task))
    labels = [*MODES, "expert"]
    table = Table(title=f"HybridVLA vs expert, seeds {args.seeds}, budget {args.budget} steps")
    for column in ("skill", "attempts", *labels):
        table.add_column(column)
    for name in skills["expert"]:
        table.add_row(name, str(skills["expert"][name]["attempts"]),
                      *(f"{skills[label][name]['success']:.0%}" for label in labels))
    means = {label: round(mean_success(skills[label]), 3) for label in labels}
    table.add_row("[bold]mean over skills", "", *(f"{means[label]:.0%}" for label in labels))
    table.add_row("actions/s (batch 1)", "", *(str(speed[m]) for m in MODES), "")
    console.print(table)
    rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    console.print(f"training: {train_speed} samples/s (batch {args.batch_size}) · peak RSS {rss_mb} MB · "
                  f"torch threads {torch.get_num_threads()}")
    report = {"checkpoint": args.checkpoint, "seeds": seeds, "budget": args.budget, "skills": skills,
              "mean_skill_success": means, "actions_per_s_batch1": speed, "train_samples_per_s": train_speed,
              "peak_rss_mb": rss_mb, "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    write_json_atomic(args.out, report)
    return report


if __name__ == "__main__":
    main()
