"""The DAgger learning curve: each round's policy on the held-out per-skill suite and the tech tree.

    python -m evals.bench_dagger --run runs/vla/dagger-crafter --modes ensemble --techtree-seeds 5 \\
        --out runs/bench/dagger.json

For every round of a finished (or partly finished) ``embodia train dagger`` run, its policy runs the
``crafter-skills`` suite (``evals.skill_suite``; one attempt per skill per held-out world from a feasible state)
in each of ``--modes`` and, with ``--techtree-seeds N``, ``crafter-techtree`` with ``--skills`` that policy
(agent rafa, no LLM, the first N heldout worlds). Rows are indexed by round and by the expert-labelled env steps
aggregated so far (the DAgger rows; round 0 is the starting policy). Every run folder lives under ``--runs`` and
is resumed on a rerun, so adding a mode or a round costs only the new runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.metrics import summarise
from evals.runner import EvalConfig, EvalInterrupted, run_suite
from evals.skill_suite import mode_folder, run_skill_suite
from evals.suite import load_suite
from tools.io import atomic_write_json
from vla.hybrid.configuration_hybrid import MODES


def rounds_of(run: Path) -> list[dict[str, Any]]:
    """(round, policy folder, expert-labelled rows so far) of every finished round, round 0 first."""
    first = json.loads((run / "round-00.json").read_text(encoding="utf-8"))
    rows = [{"round": 0, "policy": first["policy"], "labelled": 0}]
    for record_file in sorted((run / "rounds").glob("round-*/round.json")):
        record = json.loads(record_file.read_text(encoding="utf-8"))
        rows.append({"round": record["round"], "policy": record["policy"],
                     "labelled": rows[-1]["labelled"] + record["rows_added"]})
    return rows


def techtree(policy: str, out: Path, num_seeds: int) -> dict[str, Any]:
    """crafter-techtree (agent rafa, no LLM) with ``policy`` as the skills: per-goal success."""
    suite = load_suite("crafter-techtree")
    config = EvalConfig(suite, "rafa", "none", out, "heldout", num_seeds, threads=1, skills=policy)
    metrics = summarise(run_suite(config, resume=True), list(suite.goals))
    return {"goals": {s.name: round(s.success_rate, 3) for s in metrics.goals},
            "success": [metrics.overall.successes, metrics.overall.episodes], "deaths": metrics.deaths}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="an `embodia train dagger` output folder")
    parser.add_argument("--modes", default="ensemble", help=f"comma-separated inference modes: {', '.join(MODES)}")
    parser.add_argument("--num-seeds", type=int, default=None, help="first N crafter-skills heldout worlds")
    parser.add_argument("--techtree-seeds", type=int, default=0, help="also run crafter-techtree on N heldout worlds")
    parser.add_argument("--rounds", default="", help="comma-separated rounds to measure (default: all finished)")
    parser.add_argument("--runs", default=None, help="suite run folders (default RUN/bench)")
    parser.add_argument("--out", default="runs/bench/dagger.json")
    args = parser.parse_args(argv)
    run = Path(args.run)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not (run / "round-00.json").is_file() or any(m not in MODES for m in modes):
        parser.error(f"--run needs a DAgger output folder (round-00.json) and --modes some of {', '.join(MODES)}")
    runs = Path(args.runs) if args.runs else run / "bench"
    console = Console()
    curve = []
    wanted = {int(r) for r in args.rounds.split(",") if r.strip()}
    for row in (r for r in rounds_of(run) if not wanted or r["round"] in wanted):
        folder = runs / f"round-{row['round']:02d}"
        for mode in modes:
            suite = run_skill_suite(str(mode_folder(row["policy"], mode, folder)), folder / mode,
                                    num_seeds=args.num_seeds)
            entry = {**row, "mode": mode, "mean": suite["mean"], "skills": suite["skills"], "deaths": suite["deaths"]}
            if args.techtree_seeds and mode == "ensemble":
                entry["techtree"] = techtree(row["policy"], folder / "techtree", args.techtree_seeds)
            curve.append(entry)
            console.print(f"round {row['round']} {mode}: mean skill success {suite['mean']:.1%}")
    skills = list(curve[0]["skills"]) if curve else []
    table = Table(title=f"DAgger learning curve ({run}), crafter-skills heldout")
    for column in ("round", "labelled steps", "mode", *skills, "mean", "techtree"):
        table.add_column(column)
    for entry in curve:
        tree = entry.get("techtree", {}).get("success")
        table.add_row(str(entry["round"]), f"{entry['labelled']:,}", entry["mode"],
                      *(f"{entry['skills'][s]['success']:.0%}" for s in skills), f"{entry['mean']:.1%}",
                      f"{tree[0]}/{tree[1]}" if tree else "")
    console.print(table)
    report = {"run": str(run), "modes": modes, "curve": curve}
    atomic_write_json(args.out, report)
    return report


if __name__ == "__main__":
    try:
        main()
    except EvalInterrupted as stopped:  # finished episodes are on disk; a rerun resumes them
        print(f"stopped ({stopped}): {stopped.saved}/{stopped.total} episodes of {stopped.out} saved; rerun to resume")
        raise SystemExit(stopped.exit_code) from None
