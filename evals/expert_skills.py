"""Benchmark of the scripted Crafter skills: how often an oracle skill order reaches the tech tree.

    python -m evals.expert_skills --seeds 100-119 --out runs/bench/expert_skills.json

For each seed one episode runs an "oracle" that satisfies each skill's ``requires`` and ``near``
recursively from ``SKILLS`` (no LLM), keeping vitals up with drink/eat/sleep, toward each target
in ``TARGETS`` in turn. A target counts as reached when its achievement unlocks within
``--max-steps`` env steps of starting it; "steps" is the episode step at which it unlocked.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import gymnasium
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tools.envs.crafter import CrafterEnv, daylight_phase
from tools.seeds import parse_seeds
from tools.skills.crafter import SKILLS, run_skill

TARGETS: tuple[str, ...] = (
    "collect wood",
    "place table",
    "make wood_pickaxe",
    "collect stone",
    "make stone_pickaxe",
    "collect coal",
    "place furnace",
    "collect iron",
    "make iron_pickaxe",
    "collect diamond",
)
_GIVER = {item: spec.name for spec in SKILLS.values() if spec.verb == "collect" for item in spec.gives}


class Oracle:
    """Hard-coded dependency solver over ``SKILLS``; one instance per episode.

    It steps ``env`` (which may be a recording wrapper) and reads state from ``env.unwrapped``.
    """

    def __init__(self, env: gymnasium.Env, deadline: int) -> None:
        self.env, self.game, self.deadline = env, env.unwrapped, deadline
        self.calls = 0

    def over(self) -> bool:
        return self.game.steps >= self.deadline or self.game.player.health <= 0

    def call(self, name: str):
        self.calls += 1
        return run_skill(self.env, name, budget=max(1, min(SKILLS[name].budget, self.deadline - self.game.steps)))

    def survive(self) -> None:
        inv = self.game.inventory
        night = daylight_phase(self.game.daylight) != "day"
        if inv["drink"] <= 4:
            self.call("drink water")
        if inv["food"] <= 4:
            self.call("eat cow")
        if inv["energy"] <= 3 or (night and inv["wood_pickaxe"] and inv["energy"] < 9):
            self.call("sleep")

    def achieve(self, name: str, depth: int = 0) -> bool:
        """Run ``name`` after meeting its requirements; True on success."""
        spec = SKILLS[name]
        for _ in range(12):
            if self.over():
                return False
            self.survive()
            inv = self.game.inventory
            missing = next(iter(spec.missing(inv)), None)
            if missing is not None and depth < 6:
                self.achieve(_GIVER.get(missing) or f"make {missing}", depth + 1)
                continue
            result = self.call(name)
            if result.ok:
                return True
            near = result.data.get("missing_near")
            if near:
                self.achieve(f"place {near}", depth + 1)
            elif result.data.get("reason", "").startswith("no "):
                self.call("explore")
        return False


def run_seed(seed: int, max_steps: int) -> dict[str, int | None]:
    env = CrafterEnv(length=len(TARGETS) * max_steps + 1)
    env.reset(seed=seed)
    reached: dict[str, int | None] = {}
    for target in TARGETS:
        spec = SKILLS[target]
        oracle = Oracle(env, env.steps + max_steps)
        done = env.achievements[spec.achievement] > 0
        while not done and not oracle.over():
            oracle.achieve(target)
            done = env.achievements[spec.achievement] > 0
        reached[target] = env.steps if done else None
        if env.player.health <= 0:
            break
    return {t: reached.get(t) for t in TARGETS}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="100-119")
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--out", default="runs/bench/expert_skills.json")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        parser.error(f"--seeds: {exc}")  # exit 2 with the usage line
    console = Console()
    per_seed: dict[int, dict[str, int | None]] = {}
    start = time.time()
    with Progress(console=console) as progress:
        task = progress.add_task("expert skills", total=len(seeds))
        for seed in seeds:
            per_seed[seed] = run_seed(seed, args.max_steps)
            progress.advance(task)
    summary = {}
    table = Table(title=f"Expert skill chain, seeds {args.seeds}")
    for col in ("target", "success", "mean steps"):
        table.add_column(col)
    for target in TARGETS:
        steps = [r[target] for r in per_seed.values() if r[target] is not None]
        rate = len(steps) / len(seeds)
        mean = sum(steps) / len(steps) if steps else None
        summary[target] = {"success_rate": rate, "mean_steps": mean}
        table.add_row(target, f"{rate:.0%}", "-" if mean is None else f"{mean:.0f}")
    console.print(table)
    report = {
        "seeds": seeds,
        "max_steps": args.max_steps,
        "wall_s": round(time.time() - start, 1),
        "summary": summary,
        "per_seed": {str(k): v for k, v in per_seed.items()},
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
