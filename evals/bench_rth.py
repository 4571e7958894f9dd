"""Benchmark of RT-H (``vla/rth``): per-skill success beside HybridVLA and the expert, corrections, speed.

    OMP_NUM_THREADS=1 python -m evals.bench_rth --seeds 2000-2001 --budget 100 --out runs/bench/rth.json

1. **Skills**: per-skill success on held-out worlds (never collected) for the shipped RT-H and HybridVLA
   checkpoints and the scripted expert from the same states (``vla.evaluate.compare_skills``), with Wilson
   95% intervals.
2. **Corrections** (RT-H-Intervene): on a skill where RT-H fails (``--skill``, or the worst one with enough
   attempts), the scripted expert plays the person: on fresh training worlds, wherever RT-H's predicted
   motion differs from the expert's next motion it types the expert's (``vla.rth.corrections.ExpertCorrector``),
   until ``--corrections`` corrected episodes are logged; the motion query is fine-tuned on those rows only
   (``finetune_motion``) and the skill is evaluated before and after on the held-out worlds.
3. **Speed**: ``policy.act`` calls per second at batch 1 (both queries per action) on real observations.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.bench_vla import real_observations
from tools.collect_crafter import feasible_chain
from tools.envs.crafter import CrafterEnv
from tools.episodes import write_json_atomic
from tools.seeds import parse_seeds
from tools.skills.crafter import SKILLS, run_skill
from tools.stats import wilson_interval
from vla.evaluate import compare_skills, mean_success
from vla.registry import load_policy
from vla.rth.corrections import ExpertCorrector, finetune_motion, write_interventions
from vla.skills import LearnedSkillRunner

console = Console()


def with_intervals(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``compare_skills``'s table with a Wilson 95% interval beside each success rate."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label, skills in table.items():
        out[label] = {}
        for name, row in skills.items():
            n = int(row["attempts"])
            low, high = wilson_interval(round(row["success"] * n), n)
            out[label][name] = {**row, "wilson95": [round(low, 3), round(high, 3)]}
    return out


def actions_per_second(policy, n: int = 200, instruction: str = "collect wood") -> float:
    """``policy.act`` calls per second at batch 1 (a fresh motion + action query each call)."""
    obs = real_observations(n)
    policy.reset()
    started = time.perf_counter()
    for i in range(n):
        policy.act({"image": obs["image"][i], "state": obs["state"][i]}, instruction)
    return n / (time.perf_counter() - started)


def collect_corrections(policy, skill: str, episodes: int, first_seed: int, max_worlds: int,
                        budget: int) -> dict[str, Any]:
    """Corrected attempts of ``skill`` on worlds ``first_seed, ...`` until ``episodes`` of them had a correction;
    the rows land in ``policy.interventions``."""
    corrector = ExpertCorrector(policy)
    attempts, corrected, successes, worlds = 0, 0, 0, 0
    for seed in range(first_seed, first_seed + max_worlds):
        worlds += 1
        env = CrafterEnv(seed=seed)
        env.reset(seed=seed)
        for name in feasible_chain(env):
            steps = min(budget, SKILLS[name].budget)
            if name == skill and corrected < episodes:
                before = corrector.corrections
                successes += corrector(copy.deepcopy(env), name, budget=steps).ok
                attempts += 1
                corrected += corrector.corrections > before
            run_skill(env, name, budget=steps)
        console.print(f"corrections: world {seed}: {corrected}/{episodes} corrected episodes, "
                      f"{corrector.corrections} corrected steps")
        if corrected >= episodes:
            break
    return {"worlds": worlds, "attempts": attempts, "corrected_episodes": corrected,
            "corrected_steps": corrector.corrections, "success_with_live_corrections": successes / max(1, attempts)}


def pick_skill(table: dict[str, dict[str, dict[str, float]]], min_attempts: int) -> str:
    """The skill RT-H does worst (most attempts breaking ties) among those the expert solves and tried often."""
    rows = [(row["success"], -row["attempts"], name) for name, row in table["rth"].items()
            if row["attempts"] >= min_attempts and table["expert"][name]["success"] > 0.5]
    if not rows:
        raise SystemExit(f"no skill had {min_attempts}+ attempts; pass --skill")
    return min(rows)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="2000-2001", help="held-out worlds for the per-skill table")
    parser.add_argument("--budget", type=int, default=100, help="env steps per skill attempt (at most)")
    parser.add_argument("--skill", default="", help="the skill to correct ('' = RT-H's worst)")
    parser.add_argument("--corrections", type=int, default=30, help="corrected episodes to collect")
    parser.add_argument("--correction-seeds", type=int, default=300, help="first world of the correction runs")
    parser.add_argument("--correction-eval-seeds", default="2000-2005", help="held-out worlds for before/after")
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--replay", default="data/crafter-skills-motion",
                        help="demonstrations mixed into the fine-tuning ('' = the corrections alone)")
    parser.add_argument("--share", type=float, default=0.25, help="the corrections' share of the mixed rows")
    parser.add_argument("--reuse-corrections", action="store_true",
                        help="skip stages 1-2's collection: fine-tune on the intervention data already in --work "
                        "(the skill from --skill)")
    parser.add_argument("--work", default="runs/bench/rth", help="intervention data and the fine-tuned policy")
    parser.add_argument("--out", default="runs/bench/rth.json")
    args = parser.parse_args()
    work = Path(args.work)
    rth, hybrid = load_policy("rth"), load_policy("hybrid")
    result: dict[str, Any] = {"command": " ".join(["python -m evals.bench_rth", *sys.argv[1:]]),
                              "args": vars(args)}

    data = work / "interventions"
    if args.reuse_corrections:  # stages 1-2 from the last run: only the fine-tuning and before/after again
        result = {**json.loads(Path(args.out).read_text(encoding="utf-8")), "command": result["command"]}
        skill = result["corrections"]["skill"]
    else:
        # --- 1. skills -----------------------------------------------------------------------
        started = time.perf_counter()
        table = compare_skills({"rth": LearnedSkillRunner(rth), "hybrid": LearnedSkillRunner(hybrid)},
                               parse_seeds(args.seeds), args.budget,
                               on_seed=lambda s: console.print(f"skills: world {s}"))
        result["skills"] = with_intervals(table)
        result["mean_skill_success"] = {label: round(mean_success(t), 3) for label, t in table.items()}
        result["skills_seconds"] = round(time.perf_counter() - started, 1)
        write_json_atomic(args.out, result)

        # --- 2. corrections --------------------------------------------------------------------
        skill = args.skill or pick_skill(table, 4)
        rth.interventions.clear()
        result["corrections"] = {"skill": skill, **collect_corrections(rth, skill, args.corrections,
                                                                       args.correction_seeds, 40, args.budget)}
        for old in data.glob("data/*.parquet"):  # a rerun starts its intervention data afresh
            old.unlink()
        write_interventions(data, rth.interventions)
        result["corrections"]["rows"] = len(rth.interventions)
        rth.interventions.clear()
    label = "rth+corrections" + ("+replay" if args.replay else "")
    tuned_dir = work / label.replace("+", "-")
    finetune_motion("rth", data, tuned_dir, steps=args.finetune_steps, lr=args.lr, replay=args.replay or None,
                    share=args.share)
    tuned = load_policy(tuned_dir)
    before_after = compare_skills({"rth": LearnedSkillRunner(rth), label: LearnedSkillRunner(tuned)},
                                  parse_seeds(args.correction_eval_seeds), args.budget, skills={skill},
                                  on_seed=lambda s: console.print(f"before/after: world {s}"))
    result["corrections"].setdefault("before_after", {}).update(
        {name: with_intervals({name: t})[name].get(skill) for name, t in before_after.items()})
    result["corrections"][f"finetune {label}"] = {"steps": args.finetune_steps, "lr": args.lr,
                                                   "replay": args.replay, "share": args.share if args.replay else 1}
    write_json_atomic(args.out, result)

    # --- 3. speed ----------------------------------------------------------------------------
    result["actions_per_s_batch1"] = {"rth": round(actions_per_second(rth), 1)}
    write_json_atomic(args.out, result)
    report(result)


def report(result: dict[str, Any]) -> None:
    skills = result["skills"]
    table = Table(title="per-skill success on held-out worlds (Wilson 95%)")
    for column in ("skill", "attempts", "RT-H", "HybridVLA", "expert"):
        table.add_column(column)

    def cell(row: dict[str, Any] | None) -> str:
        return "-" if row is None else f"{row['success']:.0%} [{row['wilson95'][0]:.0%}, {row['wilson95'][1]:.0%}]"

    for name in sorted(skills["expert"]):
        table.add_row(name, str(skills["expert"][name]["attempts"]),
                      *(cell(skills.get(label, {}).get(name)) for label in ("rth", "hybrid", "expert")))
    table.add_row("mean", "", *(f"{result['mean_skill_success'].get(k, 0):.0%}" for k in ("rth", "hybrid", "expert")))
    console.print(table)
    corrections = result["corrections"]
    console.print({k: v for k, v in corrections.items() if k != "before_after"})
    for label, row in corrections["before_after"].items():
        console.print(f"{corrections['skill']}: {label}: {cell(row)} of {row and row['attempts']}")
    console.print(f"actions/s at batch 1: {result['actions_per_s_batch1']}")
    console.print(f"reproduce: {result['command']}")


if __name__ == "__main__":
    main()
