"""Agent success rate per goal over held-out seeds, and the planner's cost per decision.

    python -m evals.goal_success --seeds 100-119 --out runs/bench/goal_success.json

Each (goal, seed) episode runs through :func:`agents.episode.run_episode` — the
same code path as ``embodia run`` — into ``<out stem>/<goal>/seed-<n>/``. Finished
episodes (a ``summary.json`` exists) are reused, so a killed benchmark resumes.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from agents.episode import percentile, run_episode, versions
from agents.rafa import RafaConfig
from tools.episodes import SUMMARY_FILE, write_json_atomic

GOALS = ("collect wood", "place table", "make wood pickaxe", "collect stone", "make stone pickaxe",
         "collect coal", "place furnace", "collect iron", "make iron pickaxe", "collect diamond")


def parse_seeds(spec: str) -> list[int]:
    """'100-119' or '1,5,9' → list of ints."""
    seeds: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def main(
    seeds: Annotated[str, typer.Option(help="seed range, e.g. 100-119 (tests use seeds < 100)")] = "100-119",
    goals: Annotated[str, typer.Option(help="comma-separated goals (default: the ten tech-tree goals)")] = "",
    llm: Annotated[str, typer.Option(help="planner BACKEND:MODEL or 'none'")] = "transformers:smollm2",
    max_steps: Annotated[int, typer.Option(help="env-step budget per episode")] = 10_000,
    out: Annotated[Path, typer.Option(help="JSON results; episodes go next to it")] = Path(
        "runs/bench/goal_success.json"),
) -> None:
    from embodia.cli import load_llm

    console = Console()
    planner = load_llm(llm, "cpu", "float32")
    goal_list = [g.strip() for g in goals.split(",") if g.strip()] or list(GOALS)
    seed_list = parse_seeds(seeds)
    episodes_dir = out.with_suffix("")
    summaries: dict[str, list[dict]] = {g: [] for g in goal_list}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("episodes", total=len(goal_list) * len(seed_list))
        for goal in goal_list:
            for seed in seed_list:
                folder = episodes_dir / goal.replace(" ", "_") / f"seed-{seed}"
                progress.update(task, description=f"{goal} · seed {seed}")
                if (folder / SUMMARY_FILE).exists():
                    summary = json.loads((folder / SUMMARY_FILE).read_text())
                else:
                    summary = run_episode(goal, seed=seed, out_dir=folder, llm=planner,
                                          config=RafaConfig(max_env_steps=max_steps), video=False).summary
                summaries[goal].append(summary)
                progress.advance(task)

    rows = []
    decision_ms = []
    for goal, runs in summaries.items():
        successes = [r for r in runs if r["success"]]
        rows.append({
            "goal": goal, "episodes": len(runs), "success_rate": len(successes) / len(runs),
            "mean_env_steps_success": statistics.mean(r["env_steps"] for r in successes) if successes else None,
            "mean_decisions": statistics.mean(r.get("decisions", 0) for r in runs),
            "failures": sorted({r["reason"] for r in runs if not r["success"]}),
        })
        for folder in sorted((episodes_dir / goal.replace(" ", "_")).glob("seed-*")):
            decision_ms += [r["decision_ms"] for r in _decisions(folder)]
    table = Table(title=f"embodia agent ({llm}) — seeds {seeds}")
    for column in ("goal", "success", "mean env steps (successes)", "mean decisions"):
        table.add_column(column)
    for row in rows:
        steps = row["mean_env_steps_success"]
        table.add_row(row["goal"], f"{row['success_rate']:.0%}", "-" if steps is None else f"{steps:.0f}",
                      f"{row['mean_decisions']:.1f}")
    console.print(table)
    cost = {"decisions_with_llm": len(decision_ms),
            "decision_ms_median": statistics.median(decision_ms) if decision_ms else None,
            "decision_ms_p95": percentile(decision_ms, 95) if decision_ms else None}
    console.print(f"planner: {cost['decisions_with_llm']} LLM decisions, median {cost['decision_ms_median']} ms, "
                  f"p95 {cost['decision_ms_p95']} ms")
    write_json_atomic(out, {"llm": llm, "seeds": seed_list, "max_steps": max_steps, "goals": rows,
                            "planner_cost": cost, "versions": versions()})
    console.print(f"wrote {out}")


def _decisions(folder: Path) -> list[dict]:
    """Planning steps that consulted the LLM, read back from an episode log."""
    from tools.episodes import LOG_FILE, read_log

    log = folder / LOG_FILE
    if not log.exists():
        return []
    return [r for r in read_log(log) if r["type"] == "PlanningStep" and r.get("llm_ms", 0) > 0]


if __name__ == "__main__":
    typer.run(main)
