"""Benchmark of UniVLA against HybridVLA with 10% and 100% of the action labels (Crafter skills).

    python -m evals.bench_univla --out runs/bench/univla.json

- per-skill success on held-out worlds (never collected) from identical world states
  (``vla.evaluate.compare_skills``: learned runners and the scripted expert), with 95% Wilson intervals;
  ``--skills`` restricts the attempted skills (the expert still plays the whole chain to move the world on);
- actions/s at batch 1 on real Crafter frames, per policy;
- training samples/s of every stage as measured in the training runs (their ``metrics.json``), and the
  latent action model's held-out numbers (reconstruction vs copying o_t, codes used).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tools.envs.crafter import CrafterEnv
from tools.episodes import write_json_atomic
from tools.seeds import parse_seeds
from tools.stats import wilson_interval
from vla.base import Policy
from vla.evaluate import compare_skills, mean_success
from vla.registry import load_policy
from vla.skills import DEFAULT_CHECKPOINT, LearnedSkillRunner

DEFAULT_SKILLS = "collect wood,place table,make wood_pickaxe,collect stone"


def crafter_frames(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Real observations of a random walk (the speed test's inputs)."""
    env, rng = CrafterEnv(seed=seed), np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames = []
    for _ in range(n):
        frames.append(obs)
        obs, *_ = env.step(int(rng.integers(17)))
    return frames


def actions_per_second(policy: Policy, frames: list[dict[str, np.ndarray]], instruction: str = "collect wood",
                       rounds: int = 3) -> float:
    """Median over ``rounds`` of ``act`` calls per second at batch 1 (after one warm-up call)."""
    policy.reset()
    policy.act(frames[0], instruction)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in frames:
            policy.reset()  # a fresh chunk each call: every call is a full inference
            policy.act(frame, instruction)
        rates.append(len(frames) / (time.perf_counter() - start))
    return round(float(np.median(rates)), 1)


def run_facts(folder: Path) -> dict:
    """Samples/s and held-out metrics of a training run (per stage for UniVLA)."""
    path = folder / "metrics.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text(encoding="utf-8"))
    stages = metrics.get("stages", {"train": metrics})
    return {stage: {"train_samples_per_s": m.get("train_samples_per_s"), "train_rows": m.get("train_rows"),
                    "validation": m.get("validation")} for stage, m in stages.items()}


def with_intervals(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, skills in results.items():
        out[label] = {}
        for name, cell in skills.items():
            hits = round(cell["success"] * cell["attempts"])
            low, high = wilson_interval(hits, cell["attempts"])
            out[label][name] = {**cell, "successes": hits, "wilson95": [round(low, 3), round(high, 3)]}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--univla", default="runs/univla/crafter", help="UniVLA checkpoint (10%% labels)")
    parser.add_argument("--hybrid-10", default="runs/univla/hybrid-10pct", help="HybridVLA on the same 10%%")
    parser.add_argument("--hybrid-100", default=str(DEFAULT_CHECKPOINT), help="HybridVLA on 100%% (the shipped one)")
    parser.add_argument("--seeds", default="2000-2003")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--skills", default=DEFAULT_SKILLS, help="comma-separated; '' = every skill")
    parser.add_argument("--out", default="runs/bench/univla.json")
    args = parser.parse_args(argv)
    console = Console()
    folders = {"univla (10% labels)": Path(args.univla), "hybrid (10% labels)": Path(args.hybrid_10),
               "hybrid (100% labels)": Path(args.hybrid_100)}
    policies = {label: load_policy(folder) for label, folder in folders.items()}
    frames = crafter_frames(100)
    speed = {label: actions_per_second(policy, frames) for label, policy in policies.items()}
    skills = [s.strip() for s in args.skills.split(",") if s.strip()] or None
    started = time.perf_counter()
    results = with_intervals(compare_skills({label: LearnedSkillRunner(p) for label, p in policies.items()},
                                            parse_seeds(args.seeds), args.budget, skills=skills,
                                            on_seed=lambda seed: console.print(f"seed {seed} done")))
    labels = [*folders, "expert"]
    table = Table(title=f"Crafter skills, held-out worlds {args.seeds}, budget {args.budget} (95% Wilson)")
    for column in ("skill", "attempts", *labels):
        table.add_column(column)
    for name, cell in results["expert"].items():
        table.add_row(name, str(cell["attempts"]), *(
            f"{results[label][name]['success']:.0%} [{results[label][name]['wilson95'][0]:.0%}, "
            f"{results[label][name]['wilson95'][1]:.0%}]" for label in labels))
    means = {label: round(mean_success(results[label]), 3) for label in labels}
    table.add_row("[bold]mean over skills", "", *(f"{means[label]:.0%}" for label in labels))
    table.add_row("actions/s (batch 1)", "", *(str(speed.get(label, "")) for label in labels))
    console.print(table)
    report = {"command": "python -m evals.bench_univla " + " ".join(argv or []), "seeds": args.seeds,
              "budget": args.budget, "skills": skills, "checkpoints": {k: str(v) for k, v in folders.items()},
              "success": results, "mean_success": means, "actions_per_s_batch1": speed,
              "training": {label: run_facts(folder) for label, folder in folders.items()},
              "eval_seconds": round(time.perf_counter() - started, 1)}
    write_json_atomic(Path(args.out), report)
    console.print(f"written {args.out}")
    return report


if __name__ == "__main__":
    main()
