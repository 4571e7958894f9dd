"""The README's "Reliability" table: the eval fault matrix (``evals.faults``), the other fault tests and the soak.

    python -m evals.bench_reliability --out runs/bench/reliability.json           # full: 500 episodes, 1,000 turns
    python -m evals.bench_reliability --quick --out runs/bench/reliability.json   # minutes, for a check

The fault scenarios and the soak live in ``evals.faults`` and ``evals.soak``, shared with ``tests/faults``;
this module repeats them and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.faults import BAD_SUITES, Outcome, bad_suite, env_fault, interrupt_and_resume, reference_records
from evals.soak import soak_chat, soak_eval


# --- the benchmark ---
@dataclass
class Plan:
    """How many tries of each fault class, and the soak's size."""

    signal_tries: int = 3
    env_tries: int = 5
    bad_suite_tries: int = 1  # per kind of bad suite
    soak_episodes: int = 500
    chat_turns: int = 1000
    fault_tests: bool = True  # also run the other fault classes' tests in tests/faults (chat, CLI input, …)


QUICK = Plan(signal_tries=1, env_tries=2, soak_episodes=30, chat_turns=80, fault_tests=False)


def run_bench(plan: Plan, work: Path) -> dict[str, Any]:
    """Every fault class ``plan`` asks for, then the soak; returns the table's numbers."""
    rng = random.Random(0)
    outcomes: list[Outcome] = []
    reference = reference_records(Path(tempfile.mkdtemp(dir=work)))
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        for _ in range(plan.signal_tries):
            outcomes.append(interrupt_and_resume(Path(tempfile.mkdtemp(dir=work)), sig, reference,
                                                 delay=rng.uniform(0, 0.5)))
    outcomes += [interrupt_and_resume(Path(tempfile.mkdtemp(dir=work)), signal.SIGKILL, reference, worker=True,
                                      delay=rng.uniform(0, 0.5)) for _ in range(plan.signal_tries)]
    outcomes += [env_fault(Path(tempfile.mkdtemp(dir=work)), rng) for _ in range(plan.env_tries)]
    outcomes += [bad_suite(Path(tempfile.mkdtemp(dir=work)), case)
                 for case in BAD_SUITES for _ in range(plan.bad_suite_tries)]
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        name = "bad suite file" if outcome.fault.startswith("bad suite") else outcome.fault
        row = rows.setdefault(name, {"tried": 0, "crashes": 0, "tracebacks": 0, "lost": 0, "duplicated": 0,
                                     "left_behind": 0, "identical": 0, "compared": 0, "failures": [], "details": []})
        counts = {"tried": 1, "crashes": outcome.crashed, "tracebacks": outcome.traceback_shown, "lost": outcome.lost,
                  "duplicated": outcome.duplicated, "left_behind": outcome.left_behind,
                  "compared": outcome.identical is not None, "identical": bool(outcome.identical)}
        row.update({key: row[key] + int(value) for key, value in counts.items()})
        row["details"].append(outcome.detail[:300])
        if not outcome.clean:
            row["failures"].append(dataclasses.asdict(outcome))
    results: dict[str, Any] = {"faults": rows, "fault_tests": fault_tests(work) if plan.fault_tests else {}}
    for name, soak, size in (("soak_eval", soak_eval, plan.soak_episodes), ("soak_chat", soak_chat, plan.chat_turns)):
        try:
            results[name] = soak(Path(tempfile.mkdtemp(dir=work)), size)
        except Exception as exc:  # a soak that cannot run is reported as such; the fault table still counts
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def fault_tests(work: Path) -> dict[str, dict[str, int]]:
    """Run the fault tests of other classes (``tests/faults/test_*.py`` but this module's and the soak) with
    pytest; per file, how many ran and how many failed. Each of them asserts no traceback and nothing lost."""
    import xml.etree.ElementTree as ElementTree

    folder = Path(__file__).resolve().parent.parent / "tests" / "faults"
    files = sorted(str(f) for f in folder.glob("test_*.py") if f.name not in ("test_eval_faults.py", "test_soak.py"))
    if not files:
        return {}
    report = work / "fault-tests.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                    f"--junitxml={report}", *files], capture_output=True, timeout=1800,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=folder.parent.parent)
    rows: dict[str, dict[str, int]] = {}
    for case in ElementTree.parse(report).iter("testcase") if report.exists() else ():
        row = rows.setdefault(case.get("classname", "?").rsplit(".", 1)[-1], {"tests": 0, "failed": 0})
        row["tests"] += 1
        row["failed"] += any(child.tag in ("failure", "error") for child in case)
    return rows


def table(results: dict[str, Any]) -> str:
    """The README's Reliability table (markdown)."""
    lines = ["| fault | tried | crashes | tracebacks shown | episodes lost | duplicated | processes left | "
             "identical reruns |", "|---|---|---|---|---|---|---|---|"]
    for name, row in results["faults"].items():
        same = f"{row['identical']}/{row['compared']}" if row["compared"] else "—"
        lines.append(f"| {name} | {row['tried']} | {row['crashes']} | {row['tracebacks']} | {row['lost']} | "
                     f"{row['duplicated']} | {row['left_behind']} | {same} |")
    for name, row in results.get("fault_tests", {}).items():
        lines.append(f"| `tests/faults/{name}.py` (each test asserts its own counts) | {row['tests']} | "
                     f"{row['failed']} | — | — | — | — | — |")
    ev, chat = results["soak_eval"], results["soak_chat"]
    if "error" in ev or "error" in chat:
        failed = f"eval {ev.get('error', 'ran')}, chat {chat.get('error', 'ran')}"
        return "\n".join([*lines, "", f"Soak did not run: {failed}"])
    lines += ["", f"Soak: {ev['episodes']} eval episodes in {ev['seconds']} s ({ev['errors']} errors, exit "
                  f"{ev['exit']}, {ev['left_behind']} processes left): parent RSS start/end/peak "
                  f"{'/'.join(map(str, ev['parent_rss_mb']))} MB, largest worker "
                  f"{'/'.join(map(str, ev['worker_rss_mb']))} MB; open fds parent "
                  f"{'/'.join(map(str, ev['parent_fds']))} (start/end/peak), worker "
                  f"{'/'.join(map(str, ev['worker_fds']))} (start/end). "
                  f"{chat['turns']} chat turns in {chat['seconds']} s: RSS start/end "
                  f"{'/'.join(map(str, chat['rss_mb']))} MB, fds {'/'.join(map(str, chat['fds']))}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/reliability.json"))
    parser.add_argument("--quick", action="store_true", help="one or two tries per class, a short soak")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    with tempfile.TemporaryDirectory(prefix="reliability-") as work:
        results = run_bench(plan, Path(work))
    results["plan"] = dataclasses.asdict(plan)
    from tools.io import atomic_write_json

    atomic_write_json(args.out, results)
    print(table(results))
    print(f"\nwritten {args.out}")
    soaked = all("error" not in results[name] for name in ("soak_eval", "soak_chat"))
    tested = all(not row["failed"] for row in results["fault_tests"].values())
    return 0 if soaked and tested and all(not row["failures"] for row in results["faults"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
