"""The eval fault scenarios, shared by ``tests/faults`` and ``evals.bench_reliability``.

Each scenario runs the real thing — ``embodia eval`` as a process, the real env, the real suite
loader — causes one fault and reports an :class:`Outcome`: did anything crash, did a user see a
traceback, was an episode lost or duplicated, was a process left behind, and did the result equal an
uninterrupted run's. The tests assert every count is zero on a few tries; the benchmark repeats them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
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
    # a killed worker's episode is retried (evals.executors), so that run finishes by itself: exit 0
    expected = 0 if missed or worker else 128 + sig if sig != signal.SIGKILL else -signal.SIGKILL
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
