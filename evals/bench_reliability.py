"""The eval fault matrix and the soak, as functions shared by ``tests/faults`` and this benchmark.

    python -m evals.bench_reliability --out runs/bench/reliability.json           # full: 500 episodes, 1,000 turns
    python -m evals.bench_reliability --quick --out runs/bench/reliability.json   # minutes, for a check

Each fault scenario runs the real thing — ``embodia eval`` as a process, the real env, the real
suite loader — causes one fault and reports a :class:`Outcome`: did anything crash, did a user see
a traceback, was an episode lost or duplicated, was a process left behind, and did the result
equal an uninterrupted run's. The tests assert every count is zero on a few tries; the benchmark
repeats them and prints the README's "Reliability" table. The soak runs many episodes and chat
turns and reports RSS and open file descriptors at start, end and peak.
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
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from evals.runner import TIMING_FIELDS, EvalConfig, run_suite
from evals.store import RESULTS_FILE, load_results
from evals.suite import load_suite

#: A critic-only open-ended suite: episodes of about a second, long enough for a signal to land mid-run.
SIGNAL_SUITE = """\
name: faults-open
env: crafter
goals: open
seeds: {dev: [0, 1, 2, 3, 4, 5]}
max_steps: 3000
steps_per_goal: 500
"""
#: Two short goals on one seed: the env fault hits the first episode, the second must still run.
ENV_SUITE = """\
name: faults-env
env: crafter
goals: [collect_wood, place_table]
seeds: {dev: [0]}
max_steps: 150
agent: {max_decisions: 20}
"""
_GOOD = "env: crafter\ngoals: [collect_wood]\nseeds: {dev: [0]}\nmax_steps: 50\n"
#: Suite files a user might write by mistake (or an attacker on purpose); each must end in exit 2 and one line.
BAD_SUITES: dict[str, str] = {
    "syntax error": "env: crafter\ngoals: [collect_wood\nseeds: {dev: [0]}\n",
    "alias bomb": "env: crafter\nseeds: {dev: [0]}\nmax_steps: 5\na: &a [x, x, x, x, x, x, x, x, x]\n"
                  + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                            for p, c in zip("abcdefgh", "bcdefghi", strict=True))
                  + "goals: *i\n",
    "huge seed range": _GOOD.replace("[0]", '"0-2000000000"'),
    "wrong type": _GOOD.replace("50", "fifty"),
    "unhashable goal": _GOOD.replace("[collect_wood]", "[[collect_wood]]"),
    "unknown agent key": _GOOD + "agent: {max_decisionz: 5}\n",
    "bad nested agent value": _GOOD + "agent: {vital_thresholds: {food: many}}\n",
    "not a mapping": "- just\n- a list\n",
    "oversized file": _GOOD + "# " + "x" * 300_000 + "\n",
}


@dataclass
class Outcome:
    """What one fault did; every count should be 0 and ``identical`` True."""

    fault: str
    crashed: bool = False
    traceback_shown: bool = False
    lost: int = 0
    duplicated: int = 0
    left_behind: int = 0
    identical: bool | None = None  # None: the scenario has no uninterrupted run to compare with
    saved_when_stopped: int | None = None  # episodes recorded before the fault (interrupted runs)
    detail: str = ""

    @property
    def clean(self) -> bool:
        return not (self.crashed or self.traceback_shown or self.lost or self.duplicated or self.left_behind) \
            and self.identical is not False


def behaviour(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without what measures time: what must repeat exactly under the same seeds."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def eval_command(suite: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "embodia", "eval", str(suite), "--agent", "rafa", "--llm", "none",
            "--threads", "1", "--out", str(out), *extra]


def session_processes(session: int) -> list[int]:
    """Live (non-zombie) processes in a session: a CLI started with ``start_new_session`` and all it spawned."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == session:  # state, ppid, pgrp, session
            found.append(int(entry.name))
    return found


def wait_gone(session: int, seconds: float = 10.0) -> list[int]:
    """The session's processes still alive after up to ``seconds`` (workers get a moment to see the death)."""
    deadline = time.monotonic() + seconds
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def reference_records(folder: Path, suite_text: str = SIGNAL_SUITE) -> list[dict[str, Any]]:
    """The uninterrupted run the interrupted ones must equal (in this process, one worker)."""
    suite_file = folder / "suite.yaml"
    suite_file.write_text(suite_text)
    return run_suite(EvalConfig(load_suite(suite_file), "rafa", "none", folder / "reference", threads=1))


def _tracker(parent: int) -> int | None:
    """The pid of multiprocessing's resource tracker among ``parent``'s children."""
    for pid in session_processes(parent):
        with suppress(OSError):
            if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def _as_foreground_job() -> None:
    """Ctrl-C at its default, as in a terminal's foreground job (a shell's background job inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_and_resume(folder: Path, sig: signal.Signals, reference: list[dict[str, Any]],
                         *, workers: int = 2, delay: float = 0.0, worker: bool = False,
                         on_stopped: Callable[[Path, str], None] | None = None) -> Outcome:
    """Run ``embodia eval`` with workers, send ``sig`` mid-suite (to one worker with ``worker``), then
    ``--resume`` with one worker.

    ``on_stopped(out, printed)`` sees the run folder and the output between the stop and the resume.
    """
    outcome = Outcome(f"{sig.name} of a worker during eval" if worker else f"{sig.name} during eval")
    suite_file, out = folder / "suite.yaml", folder / "run"
    suite_file.write_text(SIGNAL_SUITE)
    command = eval_command(suite_file, out, "--workers", str(workers))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env, preexec_fn=_as_foreground_job)
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and \
            (not results.exists() or results.read_bytes().count(b"\n") < 1):
        time.sleep(0.02)
    time.sleep(delay)
    missed = proc.poll() is not None
    with suppress(ProcessLookupError):  # the run may end between the poll and the signal
        if worker:  # the OOM killer picks the biggest process: a worker
            os.kill(max(set(session_processes(proc.pid)) - {proc.pid, _tracker(proc.pid)}), sig)
        elif sig == signal.SIGINT:  # Ctrl-C in a terminal reaches the whole process group
            os.killpg(proc.pid, sig)
        else:  # a service manager or an OOM killer signals the parent alone
            proc.send_signal(sig)
    printed = proc.communicate(timeout=120)[0].decode(errors="replace")
    expected = 0 if missed else 1 if worker else 128 + sig if sig != signal.SIGKILL else -signal.SIGKILL
    outcome.left_behind = len(wait_gone(proc.pid))
    for pid in session_processes(proc.pid):  # never leave them running, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    outcome.saved_when_stopped = len(load_results(results)) if results.exists() else 0
    outcome.detail = f"{outcome.saved_when_stopped} of {len(reference)} saved when stopped"
    if proc.returncode != expected:
        outcome.crashed, outcome.detail = True, f"exit {proc.returncode}, expected {expected}: {printed[-500:]}"
    if sig != signal.SIGKILL and not missed and "--resume" not in printed:
        outcome.crashed, outcome.detail = True, f"no resume command printed: {printed[-500:]}"
    if on_stopped is not None:
        on_stopped(out, printed)
    resumed = subprocess.run([*command[:-2], "--workers", "1", "--resume"], capture_output=True, text=True,
                             timeout=600, env=env)
    printed += resumed.stdout + resumed.stderr
    outcome.traceback_shown = "Traceback" in printed
    outcome.crashed |= resumed.returncode != 0
    return _compare(outcome, load_results(results), reference)


def _compare(outcome: Outcome, records: list[dict[str, Any]], reference: list[dict[str, Any]]) -> Outcome:
    keys = [r["episode"] for r in records]
    outcome.duplicated = len(keys) - len(set(keys))
    outcome.lost = len({r["episode"] for r in reference} - set(keys))
    by_key = {r["episode"]: r for r in records}
    outcome.identical = behaviour([by_key.get(r["episode"], {}) for r in reference]) == behaviour(reference)
    return outcome


class FaultyEnv(gym.Wrapper):
    """A real env wrapper whose ``step`` raises once, at step ``fail_at``: a simulator crash mid-episode."""

    def __init__(self, env: gym.Env, fail_at: int) -> None:
        super().__init__(env)
        self.fail_at, self.steps = fail_at, 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError(f"injected env fault at step {self.fail_at}")
        return self.env.step(action)


def env_fault(folder: Path, rng: random.Random) -> Outcome:
    """The first episode's env raises at a random step: it must be recorded as an error, the run go on."""
    from agents.rafa import RafaAgent
    from evals import agents as registry

    outcome = Outcome("env exception at a random step")
    fail_at = rng.randint(1, 5)  # collect_wood takes 6 steps here: the fault always lands inside the episode
    built = [0]

    def factory(env: gym.Env, llm: Any, memory: Any, config: Any) -> RafaAgent:
        built[0] += 1
        return RafaAgent(FaultyEnv(env, fail_at) if built[0] == 1 else env, llm, memory, config)

    suite_file = folder / "suite.yaml"
    suite_file.write_text(ENV_SUITE)
    suite = load_suite(suite_file)
    reference = run_suite(EvalConfig(suite, "rafa", "none", folder / "reference", threads=1))
    registry.AGENTS["rafa-faulty"] = dataclasses.replace(registry.AGENTS["rafa"], name="rafa-faulty",
                                                         factory=factory)
    try:
        records = run_suite(EvalConfig(suite, "rafa-faulty", "none", folder / "run", threads=1))
    except Exception as exc:  # the runner must never let an episode's crash end the suite
        outcome.crashed, outcome.detail = True, f"{type(exc).__name__}: {exc}"
        return outcome
    finally:
        del registry.AGENTS["rafa-faulty"]
    first, second = records
    outcome.detail = f"step {fail_at}: {first['status']} ({first['reason']})"
    outcome.crashed = first["status"] != "error" or "injected env fault" not in (first.get("error") or "")
    outcome.lost = len(reference) - len(records)
    outcome.identical = behaviour([{**second, "agent": "rafa"}]) == behaviour(reference[1:])
    return outcome


def bad_suite(folder: Path, case: str, timeout: float = 30.0) -> Outcome:
    """``embodia eval`` on a broken suite file: exit 2, one line naming the problem, no traceback."""
    outcome = Outcome(f"bad suite: {case}")
    suite_file = folder / "bad.yaml"
    suite_file.write_text(BAD_SUITES[case])
    started = time.monotonic()
    proc = subprocess.Popen(eval_command(suite_file, folder / "run"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        printed = proc.communicate(timeout=timeout)[0].decode(errors="replace").strip()
    except subprocess.TimeoutExpired:  # a suite that takes this long to refuse is a denial of service
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        outcome.crashed, outcome.detail = True, f"not refused within {timeout:.0f} s"
        return outcome
    outcome.detail = f"{time.monotonic() - started:.1f} s: {printed[:200]}"
    outcome.traceback_shown = "Traceback" in printed
    outcome.crashed = proc.returncode != 2 or len(printed.splitlines()) != 1 or str(suite_file) not in printed \
        or (folder / "run").exists()  # nothing may be started for a suite that is refused
    return outcome


# --- the soak ---
def _tree_usage(root: int) -> dict[str, Any]:
    """(RSS in MB, open file descriptors) of a process and of each of its worker processes."""
    import psutil

    parent = psutil.Process(root)
    workers = [c for c in parent.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
    return {"parent": (parent.memory_info().rss / 2**20, parent.num_fds()),
            "workers": [(w.memory_info().rss / 2**20, w.num_fds()) for w in workers]}


def soak_eval(folder: Path, episodes: int, workers: int = 2) -> dict[str, Any]:
    """``episodes`` short episodes through ``embodia eval`` with workers, sampling RSS and fds twice a second."""
    import psutil

    goals = ["collect_wood", "place_table", "make_wood_pickaxe", "collect_sapling", "collect_drink"]
    seeds = -(-episodes // len(goals))
    suite_file, out = folder / "soak.yaml", folder / "soak"
    suite_file.write_text(f"name: soak\nenv: crafter\ngoals: [{', '.join(goals)}]\n"
                          f"seeds: {{dev: {list(range(seeds))}}}\nmax_steps: 150\nagent: {{max_decisions: 20}}\n")
    proc = subprocess.Popen(eval_command(suite_file, out, "--workers", str(workers)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    while proc.poll() is None:
        try:
            if (out / RESULTS_FILE).exists():
                samples.append({**_tree_usage(proc.pid), "done": (out / RESULTS_FILE).read_bytes().count(b"\n")})
        except psutil.Error:
            pass
        time.sleep(0.5)
    left = wait_gone(proc.pid)
    records = load_results(out / RESULTS_FILE)
    if not samples:
        raise RuntimeError(f"embodia eval exited {proc.returncode} before its first episode was recorded")
    # start once every worker has loaded and run episodes (a tenth of the soak): warm-up is not a leak
    warm = max(2 * workers, episodes // 10)
    complete = [s for s in samples if len(s["workers"]) == workers and s["done"] >= warm] or samples
    first, last = complete[0], complete[-1]
    worker_rss = [max((w[0] for w in sample["workers"]), default=0.0) for sample in (first, last, *samples)]
    return {"episodes": len(records), "errors": sum(r["status"] == "error" for r in records),
            "seconds": round(time.monotonic() - started, 1), "exit": proc.returncode, "left_behind": len(left),
            "parent_rss_mb": [round(x, 1) for x in (first["parent"][0], last["parent"][0],
                                                    max(s["parent"][0] for s in samples))],
            "worker_rss_mb": [round(x, 1) for x in (*worker_rss[:2], max(worker_rss[2:]))],
            "parent_fds": [first["parent"][1], last["parent"][1], max(s["parent"][1] for s in samples)],
            "worker_fds": [max((w[1] for w in sample["workers"]), default=0) for sample in (first, last)]}


def soak_chat(folder: Path, turns: int) -> dict[str, Any]:
    """``turns`` lines through the real chat session (goals, questions, commands), RSS at start and end."""
    import psutil

    from agents.chat import ChatSession

    lines = ["collect wood", "what do you have?", "/look", "place a crafting table", "what did you do?",
             "make a wood pickaxe", "/save", "/reset {n}"]
    process = psutil.Process()
    session = ChatSession(None, seed=0, out_dir=folder / "chat", video=False)
    rss: list[float] = []
    fds: list[int] = []
    started = time.monotonic()
    try:
        for turn in range(turns):
            line = lines[turn % len(lines)].format(n=turn // len(lines))
            for _ in session.handle(line):
                pass
            if turn == min(len(lines) * 5, turns - 1) or turn == turns - 1:  # start: after warm-up (caches, imports)
                rss.append(process.memory_info().rss / 2**20)
                fds.append(process.num_fds())
    finally:
        session.close()
    return {"turns": turns, "seconds": round(time.monotonic() - started, 1),
            "rss_mb": [round(rss[0], 1), round(rss[-1], 1)], "fds": [fds[0], fds[-1]]}


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
