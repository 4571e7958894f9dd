"""Measure how requests are understood: paraphrases, compound requests, not-goals and questions.

    python -m evals.bench_requests --out runs/bench/requests.json
    python -m evals.bench_requests --llm transformers:smollm2 --adapter none --adapter default

Reads evals/requests/dev.yaml (what the thresholds were tuned on) and evals/requests/eval.yaml (the
reported numbers, never tuned on) and resolves every request through :func:`agents.goals.resolve_goal`
-- the matcher alone, then once per planner (``--llm``, each ``--adapter``). Prints a table per set and
mode and writes the JSON. ``--calibrate`` also prints, on the dev set, what each run threshold would do.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from agents.goals import resolve_goal
from agents.llm.base import LLM
from tools.envs.crafter_goals import match_goal, unknown_words
from tools.io import atomic_write_json

REQUESTS_DIR = Path(__file__).parent / "requests"
SETS = ("dev", "eval")
CATEGORIES = ("single", "compound", "not_goal", "question")
#: The targets of issue 25, per category: (metric, comparison, bound).
TARGETS = {"single": ("accuracy", ">=", 0.95), "compound": ("accuracy", ">=", 0.90),
           "not_goal": ("false_runs", "<=", 0.0), "question": ("misread", "<=", 0.02)}


@dataclass(frozen=True)
class Case:
    category: str
    request: str
    expected: tuple[str, ...]  # the achievements in order; () for not-goals and questions


def load_cases(name: str) -> list[Case]:
    """The requests of one set; a malformed file raises ValueError naming it."""
    path = REQUESTS_DIR / f"{name}.yaml"
    cases: list[Case] = []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for request, achievement in data["single"]:
            cases.append(Case("single", str(request), (str(achievement),)))
        for request, parts in data["compound"]:
            cases.append(Case("compound", str(request), tuple(map(str, parts))))
        cases += [Case("not_goal", str(r), ()) for r in data["not_goal"]]
        cases += [Case("question", str(r), ()) for r in data["question"]]
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a request set ({type(exc).__name__}: {exc})") from exc
    return cases


def judge(case: Case, kind: str, parts: tuple[str, ...]) -> bool:
    """Whether the understanding is right: the exact goals in order; never a run for a not-goal."""
    if case.category in ("single", "compound"):
        return kind in ("goal", "goals") and parts == case.expected
    if case.category == "not_goal":
        return kind not in ("goal", "goals")
    return kind == "question"


def evaluate(cases: list[Case], llm: LLM | None) -> dict[str, Any]:
    """Per category: right/total, the latency of each resolution, and every miss with what it became."""
    result: dict[str, Any] = {}
    for category in CATEGORIES:
        rows, ms = [c for c in cases if c.category == category], []
        misses = []
        calls_before = llm.usage.calls if llm is not None else 0
        for case in rows:
            started = time.perf_counter()
            resolution = resolve_goal(case.request, llm)
            ms.append((time.perf_counter() - started) * 1000)
            parts = tuple(g.achievement for g in resolution.parts)
            if not judge(case, resolution.kind, parts):
                misses.append({"request": case.request, "expected": list(case.expected), "kind": resolution.kind,
                               "parts": list(parts), "options": [g.achievement for g in resolution.options]})
        right = len(rows) - len(misses)
        metric, _, _ = TARGETS[category]
        value = right / len(rows) if metric == "accuracy" else len(misses) / len(rows)
        result[category] = {"n": len(rows), metric: round(value, 3), "misses": misses,
                            "latency_ms_median": round(statistics.median(ms), 2),
                            "latency_ms_max": round(max(ms), 2),
                            "llm_calls": (llm.usage.calls - calls_before) if llm is not None else 0}
    return result


def meets(category: str, stats: dict[str, Any]) -> bool:
    metric, op, bound = TARGETS[category]
    return stats[metric] >= bound if op == ">=" else stats[metric] <= bound


def calibrate(cases: list[Case]) -> list[dict[str, Any]]:
    """On single-goal and not-goal requests: how many would run right / wrong at each run threshold."""
    rows = []
    for threshold in (0.5, 0.6, 0.65, 0.7, 0.72, 0.75, 0.8, 0.9, 1.0):
        right = wrong = 0
        for case in cases:
            if case.category not in ("single", "not_goal"):
                continue
            match = match_goal(case.request)
            best, score = match.candidates[0]
            if score < threshold or (unknown_words(case.request) and score < 1.0):
                continue
            if case.category == "single" and case.expected == (best.achievement,):
                right += 1
            else:
                wrong += 1
        rows.append({"threshold": threshold, "right_runs": right, "wrong_runs": wrong})
    return rows


def load_planner(spec: str, adapter: str) -> LLM:
    from agents.llm import make_llm
    from agents.llm.adapters import resolve_adapter

    return make_llm(spec, device="cpu", dtype="float32", adapter=resolve_adapter(spec, adapter))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/requests.json"))
    parser.add_argument("--llm", default="none", help="planner spec to measure too, e.g. transformers:smollm2")
    parser.add_argument("--adapter", action="append", default=None, help="adapter(s) for --llm: none, default, DIR")
    parser.add_argument("--calibrate", action="store_true", help="print the dev set's threshold sweep")
    args = parser.parse_args(argv)
    console = Console()
    sets = {name: load_cases(name) for name in SETS}
    modes: list[tuple[str, LLM | None]] = [("matcher", None)]
    if args.llm.lower() != "none":
        for adapter in args.adapter or ["none", "default"]:
            modes.append((f"{args.llm} adapter={adapter}", load_planner(args.llm, adapter)))
    report: dict[str, Any] = {"sets": {n: len(c) for n, c in sets.items()}, "results": {}}
    for mode, llm in modes:
        for name, cases in sets.items():
            stats = evaluate(cases, llm)
            report["results"].setdefault(mode, {})[name] = stats
            table = Table(title=f"{name} set · {mode}")
            for column in ("category", "n", "metric", "target", "met", "latency ms (median / max)"):
                table.add_column(column)
            for category, row in stats.items():
                metric, op, bound = TARGETS[category]
                table.add_row(category, str(row["n"]), f"{metric} {row[metric]:.1%}", f"{op} {bound:.0%}",
                              "yes" if meets(category, row) else "NO",
                              f"{row['latency_ms_median']:.2f} / {row['latency_ms_max']:.2f}")
            console.print(table)
    report["calibration_dev"] = calibrate(sets["dev"])
    if args.calibrate:
        console.print(report["calibration_dev"])
    atomic_write_json(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
