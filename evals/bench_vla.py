"""Benchmark of the shipped HybridVLA policies: success, the AR/diffusion ablation, speed, memory.

    python -m evals.bench_vla --out runs/bench/vla.json                                     # Crafter skills
    python -m evals.bench_vla --env metaworld --out runs/bench/vla-metaworld.json           # Meta-World tasks

- success on held-out seeds (never collected) for the learned policy in each inference mode —
  collaborative ensemble, AR head only, diffusion head only (one checkpoint, so the same data and
  training budget) — and for the scripted expert from the same states: per skill in Crafter through the
  per-skill suite (``crafter-skills``, ``evals.skill_suite``: one run folder per mode under ``--runs``, resumable),
  per task on Meta-World (``vla.evaluate_metaworld.compare_tasks``);
- actions/s at batch 1 for each mode (the diffusion modes include all DDIM steps; a chunked policy
  runs one inference per chunk, so this is per env action), beside the scripted expert's env steps/s;
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

from evals.skill_suite import mode_folder, run_skill_suite
from tools.collect_crafter import feasible_chain
from tools.envs.crafter import CrafterEnv
from tools.episodes import write_json_atomic
from tools.seeds import parse_seeds
from tools.skills.crafter import run_skill
from vla.evaluate import mean_success
from vla.hybrid import HybridVLAPolicy, tokenize_instructions
from vla.hybrid.configuration_hybrid import MODES
from vla.skills import DEFAULT_CHECKPOINT, METAWORLD_CHECKPOINT


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


def arm_observations(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` observations from scripted-expert episodes of Meta-World's push task: (n, 64, 64, 3), (n, 39)."""
    from tools.envs.metaworld import MetaWorldEnv, ScriptedExpert

    env, expert = MetaWorldEnv("push"), ScriptedExpert("push")
    images, states = [], []
    obs, _ = env.reset(seed=seed)
    while len(images) < n:
        images.append(obs["image"])
        states.append(obs["state"])
        obs, _, terminated, truncated, _ = env.step(expert(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return {"image": np.stack(images), "state": np.stack(states)}


def actions_per_second(policy: HybridVLAPolicy, obs: dict[str, np.ndarray], n: int, instruction: str) -> float:
    policy.reset()
    frames = [{k: v[i % len(v)] for k, v in obs.items()} for i in range(n)]
    policy.act(frames[0], instruction)  # warm-up
    start = time.perf_counter()
    for frame in frames:
        policy.act(frame, instruction)
    return n / (time.perf_counter() - start)


def mode_policies(checkpoint: str) -> dict[str, HybridVLAPolicy]:
    """One copy of the checkpoint per inference mode (ensemble, AR only, diffusion only)."""
    policies = {mode: HybridVLAPolicy.from_pretrained(checkpoint) for mode in MODES}
    for mode, policy in policies.items():
        policy.config.mode = mode
    return policies


def speed_comparison(checkpoints: dict[str, str], obs: dict[str, np.ndarray], n: int, instruction: str,
                     rounds: int = 5) -> dict[str, dict[str, float]]:
    """Median actions/s at batch 1 per checkpoint and mode over ``rounds`` rounds that alternate the checkpoints,
    so a machine whose load changes slows every one alike (the ratio is what to read on a shared CPU)."""
    policies = {(label, mode): policy for label, path in checkpoints.items()
                for mode, policy in mode_policies(path).items()}
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in policies}
    for _ in range(rounds):
        for key, policy in policies.items():
            samples[key].append(actions_per_second(policy, obs, n, instruction))
    return {label: {mode: round(float(np.median(samples[label, mode])), 1) for mode in MODES}
            for label in checkpoints}


def expert_steps_per_second(seed: int = 2000) -> float:
    """Env steps/s of the scripted expert walking the collection curriculum in one world (planning + env step)."""
    env = CrafterEnv(seed=seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for name in feasible_chain(env):
        run_skill(env, name)
    return env.steps / (time.perf_counter() - start)


def skill_suite_results(checkpoint: str, runs: Path, num_seeds: int | None,
                        on_run=None) -> dict[str, dict[str, dict[str, float]]]:
    """Per-skill success of each inference mode and of the expert through the crafter-skills suite."""
    results = {}
    for label in (*MODES, "expert"):
        skills = "expert" if label == "expert" else str(mode_folder(checkpoint, label, runs))
        suite = run_skill_suite(skills, runs / label, num_seeds=num_seeds)
        results[label] = suite["skills"]
        if on_run is not None:
            on_run(label)
    return results


def train_samples_per_second(checkpoint: Path, obs: dict[str, np.ndarray], steps: int, batch_size: int,
                             instruction: str) -> float:
    policy = HybridVLAPolicy.from_pretrained(checkpoint).train()
    cfg = policy.config
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    actions = (torch.rand(batch_size, cfg.chunk_size, cfg.action_dim) * 2 - 1 if cfg.continuous
               else torch.randint(0, cfg.num_actions, (batch_size, cfg.chunk_size)))
    batch = {"image": torch.from_numpy(obs["image"][:batch_size]),
             "state": torch.from_numpy(obs["state"][:batch_size]),
             "instruction": tokenize_instructions([instruction] * batch_size, cfg.max_instruction_len),
             "action": actions}
    start = None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # step 0 is warm-up
        loss, _ = policy(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps * batch_size / (time.perf_counter() - start)


def success_table(results: dict[str, dict[str, dict[str, float]]], title: str, unit: str,
                  speed: dict[str, float]) -> tuple[Table, dict[str, float]]:
    """A rich table: one row per skill/task, one column per mode and the expert; and the mean per column."""
    labels = [*MODES, "expert"]
    table = Table(title=title)
    for column in (unit, "attempts", *labels):
        table.add_column(column)
    for name in results["expert"]:
        table.add_row(name, str(results["expert"][name]["attempts"]),
                      *(f"{results[label][name]['success']:.0%}" for label in labels))
    means = {label: round(mean_success(results[label]), 3) for label in labels}
    table.add_row(f"[bold]mean over {unit}s", "", *(f"{means[label]:.0%}" for label in labels))
    table.add_row("actions/s (batch 1)", "", *(str(speed[m]) for m in MODES),
                  str(speed.get("expert (env steps/s)", "")))
    return table, means


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("crafter", "metaworld"), default="crafter")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint for --env")
    parser.add_argument("--seeds", default=None, help="metaworld: held-out seeds (default 2000-2009: collection "
                        "used 0-51, training's final eval 1000-1004); crafter uses the suite's heldout split")
    parser.add_argument("--num-seeds", type=int, default=None, help="crafter: the first N worlds of the "
                        "crafter-skills heldout split (default all 22)")
    parser.add_argument("--runs", default="runs/bench/vla-skills", help="crafter: one suite run folder per mode "
                        "(resumed when rerun)")
    parser.add_argument("--budget", type=int, default=None, help="metaworld: env steps per episode (default 150)")
    parser.add_argument("--tasks", default=None, help="metaworld only: comma-separated tasks (default: all of "
                        "tools.envs.metaworld.TASKS)")
    parser.add_argument("--speed-actions", type=int, default=300)
    parser.add_argument("--speed-only", action="store_true", help="crafter: only actions/s at batch 1 of --checkpoint "
                        "and --baseline (alternating rounds, medians) and the expert's env steps/s; no suites")
    parser.add_argument("--baseline", default=None, help="with --speed-only: a second checkpoint timed in the same "
                        "run (e.g. the previous shipped one), reported as a ratio")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="default runs/bench/vla.json (crafter), "
                        "runs/bench/vla-metaworld.json (metaworld)")
    args = parser.parse_args(argv)
    arm = args.env == "metaworld"
    if arm:  # mujoco is an optional extra: import it only for the arm
        from tools.envs.metaworld import TASKS
        from vla.evaluate_metaworld import compare_tasks
    checkpoint = args.checkpoint or str(METAWORLD_CHECKPOINT if arm else DEFAULT_CHECKPOINT)
    seeds = parse_seeds(args.seeds or "2000-2009") if arm else []
    budget = args.budget or 150
    out = args.out or ("runs/bench/vla-metaworld.json" if arm else "runs/bench/vla.json")
    console = Console()
    if args.speed_only and not arm:
        return speed_only(checkpoint, args.baseline, args.speed_actions, out, console)
    policies = mode_policies(checkpoint)
    obs = arm_observations(max(args.batch_size, 64)) if arm else real_observations(max(args.batch_size, 64))
    instruction = TASKS["push"].instruction if arm else "collect wood"
    speed = {mode: round(actions_per_second(policy, obs, args.speed_actions, instruction), 1)
             for mode, policy in policies.items()}
    if not arm:
        speed["expert (env steps/s)"] = round(expert_steps_per_second(), 1)
    train_speed = round(train_samples_per_second(Path(checkpoint), obs, args.train_steps, args.batch_size,
                                                 instruction), 1)
    with Progress(console=console) as progress:
        if arm:
            tasks = [t.strip() for t in (args.tasks or ",".join(TASKS)).split(",") if t.strip()]
            bar = progress.add_task("tasks on held-out seeds", total=len(tasks) * len(seeds) * (len(MODES) + 1))
            results = compare_tasks(policies, tasks, seeds, budget, on_episode=lambda *_: progress.advance(bar))
        else:
            bar = progress.add_task("crafter-skills suite per mode", total=len(MODES) + 1)
            results = skill_suite_results(checkpoint, Path(args.runs), args.num_seeds, lambda _: progress.advance(bar))
    unit = "task" if arm else "skill"
    where = (f"seeds {seeds[0]}-{seeds[-1]}, budget {budget} steps" if arm else
             "crafter-skills heldout worlds, each skill's own budget")
    table, means = success_table(results, f"HybridVLA vs expert, {args.env} {where}", unit, speed)
    console.print(table)
    rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    console.print(f"training: {train_speed} samples/s (batch {args.batch_size}) · peak RSS {rss_mb} MB · "
                  f"torch threads {torch.get_num_threads()}")
    report = {"env": args.env, "checkpoint": checkpoint, "seeds": seeds, "budget": budget, f"{unit}s": results,
              f"mean_{unit}_success": means, "actions_per_s_batch1": speed, "train_samples_per_s": train_speed,
              "peak_rss_mb": rss_mb, "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    write_json_atomic(out, report)
    return report


def speed_only(checkpoint: str, baseline: str | None, n: int, out: str, console: Console) -> dict:
    """``--speed-only``: the checkpoint (and the baseline) per mode, the expert, one table, one JSON."""
    checkpoints = {"checkpoint": checkpoint, **({"baseline": baseline} if baseline else {})}
    speed = speed_comparison(checkpoints, real_observations(64), n, "collect wood")
    expert = round(expert_steps_per_second(), 1)
    table = Table(title=f"actions/s at batch 1 ({torch.get_num_threads()} torch threads, load "
                        f"{os.getloadavg()[0]:.1f}); expert {expert} env steps/s")
    for column in ("checkpoint", *MODES):
        table.add_column(column)
    for label, path in checkpoints.items():
        table.add_row(f"{label}: {path}", *(str(speed[label][m]) for m in MODES))
    if baseline:
        table.add_row("ratio", *(f"{speed['checkpoint'][m] / speed['baseline'][m]:.2f}x" for m in MODES))
    console.print(table)
    report = {"checkpoints": checkpoints, "actions_per_s_batch1": speed, "expert_env_steps_per_s": expert,
              "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    write_json_atomic(out, report)
    return report


if __name__ == "__main__":
    main()
