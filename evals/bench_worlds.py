"""Per-world facts on this machine: expert success on held-out seeds and env steps/s (random actions and with
the expert acting), one row per BabyAI level and for Crafter; prints a table and writes JSON.

    python -m evals.bench_worlds --seeds 1000-1019 --out runs/bench/worlds.json

Held-out seeds start at 1000 (training data and DAgger use lower seeds). MineDojo is listed as not runnable
here (its first launch builds Minecraft with gradle from unreachable hosts).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tools.envs.registry import make_env
from tools.io import atomic_write_json
from tools.seeds import parse_seeds
from tools.stats import wilson_interval


def random_steps_per_second(name: str, steps: int = 2000, **kwargs: Any) -> float:
    """Env steps/s under uniformly random actions, resets included."""
    env = make_env(name, **kwargs)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        *_, terminated, truncated, _ = env.step(env.action_space.sample() if name != "babyai"
                                                else int(rng.integers(0, 3)))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def babyai_row(level: str, seeds: list[int]) -> dict[str, Any]:
    from tools.envs.babyai import BabyAIEnv, run_expert

    env = BabyAIEnv(level)
    start = time.perf_counter()
    results = [run_expert(env, seed, max_steps=1000) for seed in seeds]
    wall = time.perf_counter() - start
    wins, steps = sum(ok for ok, _ in results), sum(n for _, n in results)
    low, high = wilson_interval(wins, len(seeds))
    return {"env": "babyai", "level": level, "expert_success": wins / len(seeds), "ci": [low, high],
            "episodes": len(seeds), "mean_steps": steps / len(seeds), "expert_steps_per_s": steps / wall,
            "random_steps_per_s": random_steps_per_second("babyai", level=level)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| env | level | expert success (95 % CI) | mean steps | steps/s (expert) | steps/s (random) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['env']} | {r['level']} | {r['expert_success']:.0%} ({r['ci'][0]:.0%}–{r['ci'][1]:.0%}, "
                     f"n={r['episodes']}) | {r['mean_steps']:.0f} | {r['expert_steps_per_s']:.0f} | "
                     f"{r['random_steps_per_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1000-1019")
    parser.add_argument("--out", default="runs/bench/worlds.json")
    args = parser.parse_args(argv)
    from tools.envs.babyai import LEVELS

    seeds = parse_seeds(args.seeds)
    rows = [babyai_row(level, seeds) for level in LEVELS]
    result = {"seeds": args.seeds, "rows": rows, "crafter_random_steps_per_s": random_steps_per_second("crafter"),
              "minedojo": "not runnable here: its first reset builds Minecraft with gradle from unreachable hosts"}
    print(table(rows))
    print(f"crafter: {result['crafter_random_steps_per_s']:.0f} random steps/s; minedojo: {result['minedojo']}")
    atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
