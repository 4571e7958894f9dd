"""Run an agent over a suite's (goal, seed) episodes: in parallel, resumable, one durable line per episode.

Every episode goes through :func:`agents.episode.run_episode` — the code path of ``embodia run``
— into ``OUT/episodes/<goal>/seed-<n>/``. Workers are processes of an :mod:`evals.executors`
executor (a ``spawn`` pool by default, or Ray), each loading its own planner once. The parent alone
writes ``results.jsonl``, whatever the executor, so lines never interleave, and ``run.json`` pins
what was run so ``--resume`` cannot mix two different evaluations into one set of numbers.

A run stopped by SIGINT, SIGTERM or SIGHUP terminates its workers at once (workers also die with a
parent killed by ``kill -9``: ``PR_SET_PDEATHSIG`` plus a parent-pid watchdog), drops the episodes
that were in flight — no half record, their folders removed — and raises :class:`EvalInterrupted`,
so the CLI can say how to ``--resume``. An episode whose record carries an error (it raised, or the
env did) is recorded as ``status: error``, never ``ok``; so is one whose worker process died on both
of its attempts (:data:`evals.executors.WORKER_ATTEMPTS`), and the run goes on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.episode import run_episode, versions
from agents.llm.adapters import ADAPTER_WEIGHTS
from agents.llm.base import LLM
from agents.open_ended import OPEN_GOAL
from agents.rafa import SCRIPTED_SKILLS, RafaConfig
from evals.agents import get_agent
from evals.executors import Setup, WorkerLost, check_address, import_ray, make_executor
from evals.store import RESULTS_FILE, ResultsWriter, load_results
from evals.suite import OPEN, Suite, SuiteError
from tools.envs.crafter_goals import GOALS
from tools.episodes import VIDEO_FILE, write_json_atomic

RUN_FILE = "run.json"
VideoMode = Literal["none", "failures", "all"]
#: Summary fields that measure time, not behaviour: the only ones allowed to differ between reruns.
TIMING_FIELDS = ("wall_seconds", "decision_ms_median", "decision_ms_p95")
#: Signals that stop a run cleanly; the exit status is 128 + the signal number (130, 143, 129).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class EvalInterrupted(KeyboardInterrupt):
    """A run stopped by a signal: finished episodes are on disk, the ones in flight were dropped.

    A ``KeyboardInterrupt`` so that code which stops on Ctrl-C stops on SIGTERM too, and so that the
    ``except Exception`` which turns an episode's crash into a record never swallows it.
    """

    def __init__(self, signum: int, out: Path | None = None, saved: int = 0, total: int = 0) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.out, self.saved, self.total = signum, out, saved, total

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass(frozen=True)
class Job:
    """One episode of the suite: a goal (achievement name, or ``open``) in a world seed."""

    goal: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.goal}/seed-{self.seed}"


@dataclass(frozen=True)
class EvalConfig:
    """Everything that decides an evaluation's results (and where they go)."""

    suite: Suite
    agent: str
    llm: str | None
    out: Path
    split: str = "dev"
    num_seeds: int | None = None
    workers: int = 1
    video: VideoMode = "none"
    device: str = "cpu"
    dtype: str = "float32"
    adapter: str | None = "default"  # as `embodia run --adapter`: the shipped one for the embedded planner
    world_model: str | None = None  # imagining agents: a checkpoint folder instead of the shipped one
    threads: int = 0  # torch threads per episode process; 0: all cores for one worker, cores / workers for several
    skills: str | None = None  # who acts, as `embodia run --skills`: expert, learned, a vla.registry name, a folder
    perception: str = "privileged"  # what the belief is built from, as `embodia run --perception`: privileged, pixels
    executor: str = "pool"  # where episodes run (evals.executors): pool, ray; never changes a record
    address: str | None = None  # --executor ray: an existing cluster (HOST:PORT, ray://..., auto); None: local

    def __post_init__(self) -> None:
        self.agent_config()  # an unknown agent, or a world model for an agent that does not imagine
        if self.workers < 1 or self.threads < 0:
            raise ValueError(f"workers must be >= 1 and threads >= 0, got {self.workers} and {self.threads}")
        if self.video not in ("none", "failures", "all"):
            raise ValueError(f"video must be none, failures or all, got {self.video!r}")
        if self.num_seeds is not None and self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
        make_executor(self.executor, self.workers, address=self.address, threads=self.threads)  # a typo: exit 2
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; an evaluation writes a folder, choose another --out")

    @property
    def planner(self) -> str | None:
        """The LLM actually loaded: None for agents that use none, or with ``--llm none``."""
        if not get_agent(self.agent).uses_llm or self.llm is None or self.llm.lower() == "none":
            return None
        return self.llm

    @property
    def planner_adapter(self) -> str | None:
        """The LoRA adapter dir the planner loads (None: base weights), resolved as `embodia run` does."""
        from agents.llm.adapters import resolve_adapter

        return resolve_adapter(self.planner, self.adapter) if self.planner else None

    def agent_config(self) -> RafaConfig:
        """The agent's settings for this suite, with ``world_model`` and ``skills`` when given."""
        config = get_agent(self.agent).config(self.suite)
        config = dataclasses.replace(config, world_model=self.world_model) if self.world_model else config
        config = dataclasses.replace(config, skills=self.skills) if self.skills else config
        return dataclasses.replace(config, perception=self.perception) if self.perception != "privileged" else config

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.suite.split(self.split)[: self.num_seeds]

    def jobs(self) -> list[Job]:
        """Seed-major order, so an interrupted run has whole seeds rather than whole goals."""
        goals = self.suite.goals or (OPEN,)
        return [Job(goal, seed) for seed in self.seeds for goal in goals]

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the original for their episodes to be one evaluation."""
        spec, agent_config = get_agent(self.agent), self.agent_config()
        world_model = calibration = None
        if agent_config.imagination:  # torch loads with the world model only for agents that imagine
            from agents.calibration import CALIBRATION_FILE
            from agents.imagination import DEFAULT_CHECKPOINT
            from world_models.rssm import WEIGHTS_FILE

            folder = Path(agent_config.world_model or DEFAULT_CHECKPOINT)
            world_model = folder / WEIGHTS_FILE
            calibration = folder / CALIBRATION_FILE if agent_config.imagine_calibrated else None
        identity = {"suite": self.suite.name, "agent": self.agent,
                    "llm": self.planner, "adapter": self.planner_adapter,
                    "adapter_weights": weights_digest(self.planner_adapter and Path(self.planner_adapter,
                                                                                    ADAPTER_WEIGHTS)),
                    "world_model_weights": weights_digest(world_model),
                    "world_model_calibration": weights_digest(calibration),
                    "privileged": spec.privileged, "split": self.split,
                    "seeds": list(self.seeds), "goals": list(self.suite.goals) or [OPEN],
                    "max_steps": self.suite.max_steps, "agent_config": dataclasses.asdict(agent_config)}
        if agent_config.skills not in SCRIPTED_SKILLS:  # a learned policy: its weights, like the adapter's
            from vla.base import WEIGHTS_FILE as POLICY_WEIGHTS
            from vla.registry import checkpoint_of

            identity["policy_weights"] = weights_digest(checkpoint_of(agent_config.skills) / POLICY_WEIGHTS)
        return json.loads(json.dumps(identity))  # as it reads back from run.json


def weights_digest(path: Path | None) -> str | None:
    """A short content hash of a weights (or calibration) file (None without one).

    A path names a folder, not weights: an eval resumed after the folder's adapter or world model was
    retrained, or its imagination re-calibrated, must notice, so run identities record this next to the path.
    """
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# --- one episode (runs in a worker process, or in-process with one worker) ---
_planner: LLM | None = None


def _load_planner(spec: str | None, adapter: str | None, device: str, dtype: str) -> None:
    """Worker start-up (once per process): load the LLM."""
    global _planner
    if spec is not None:
        from agents.llm import make_llm

        _planner = make_llm(spec, device=device, dtype=dtype, adapter=adapter)


def run_job(config: EvalConfig, job: Job) -> dict[str, Any]:
    """Run one episode and return its results line; never raises, a crash becomes a failed record."""
    spec = get_agent(config.agent)
    folder = config.out / "episodes" / job.goal / f"seed-{job.seed}"
    record = _record(config, job)
    try:
        if folder.is_dir():  # left by a run killed mid-episode: redo it from nothing, no stale file counts
            shutil.rmtree(folder)
        goal = OPEN_GOAL if job.goal == OPEN else GOALS[job.goal]
        result = run_episode(goal, seed=job.seed, out_dir=folder, llm=_planner, config=config.agent_config(),
                             video=config.video != "none", make_agent=spec.make_agent(config.suite))
        summary = {k: v for k, v in result.summary.items() if k != "versions"}
        if config.video == "failures" and result.success:
            (folder / VIDEO_FILE).unlink(missing_ok=True)
        # run_episode catches what the agent or env raised and keeps its traceback in ``error``
        record.update(summary, status="error" if summary.get("error") else "ok", goal=job.goal,
                      goal_phrase=summary["goal"])
        record["video"] = str((folder / VIDEO_FILE).relative_to(config.out)) if (folder / VIDEO_FILE).exists() \
            else None
    except Exception as exc:  # recorded as a failed episode; the suite goes on
        record.update(status="error", success=False, reason=f"{type(exc).__name__}: {exc}",
                      error=traceback.format_exc(), achievements=[], env_steps=0)
    return record


def _record(config: EvalConfig, job: Job) -> dict[str, Any]:
    """What every results line of ``job`` says, whatever became of the episode."""
    folder = config.out / "episodes" / job.goal / f"seed-{job.seed}"
    return {"episode": job.key, "goal": job.goal, "seed": job.seed, "agent": config.agent, "llm": config.planner,
            "dir": str(folder.relative_to(config.out))}


def lost_record(config: EvalConfig, job: Job, lost: WorkerLost) -> dict[str, Any]:
    """The failed record of an episode whose worker process died on every attempt; its partial folder goes."""
    shutil.rmtree(config.out / "episodes" / job.goal / f"seed-{job.seed}", ignore_errors=True)
    return {**_record(config, job), "status": "error", "success": False, "reason": f"WorkerLost: {lost.error}",
            "error": f"WorkerLost: {lost.error} ({lost.attempts} attempts)", "achievements": [], "env_steps": 0}


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into :class:`EvalInterrupted` in the main thread, once.

    Further signals while the run cleans up are ignored, so the cleanup itself is never cut short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        _ignore_stop_signals()
        raise EvalInterrupted(signum)

    # a signal ignored at start stays ignored (nohup, a background job without job control), as Python does
    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def _drop_unrecorded(config: EvalConfig, jobs: list[Job]) -> None:
    """Remove the folders of episodes that have no results line (in flight when the run stopped)."""
    recorded = {r.get("episode") for r in load_results(config.out / RESULTS_FILE)}
    for job in jobs:
        folder = config.out / "episodes" / job.goal / f"seed-{job.seed}"
        if job.key not in recorded and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


# --- the suite ---
def prepare(config: EvalConfig, resume: bool) -> list[dict[str, Any]]:
    """Check ``OUT`` against the config; return the records already finished there."""
    run_file, results_file = config.out / RUN_FILE, config.out / RESULTS_FILE
    try:  # before any model loads: a folder that cannot be written should cost a second, not a run
        config.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot create the run folder {config.out}: {exc.strerror or exc}") from None
    if not os.access(config.out, os.W_OK):
        raise SuiteError(f"cannot write to the run folder {config.out}: permission denied; choose another --out")
    identity = config.identity()
    if run_file.exists() or results_file.exists():
        if not resume:
            raise SuiteError(f"{config.out} already holds an evaluation; pass --resume to finish it, "
                             "or choose another --out")
        previous = json.loads(run_file.read_text())["identity"] if run_file.exists() else identity
        if isinstance(previous.get("agent_config"), dict):
            previous["agent_config"] = with_new_defaults(previous["agent_config"], identity["agent_config"])
        # a key added to identities after the run was recorded could not be recorded: only recorded ones count
        changed = sorted(k for k in identity if k in previous and previous[k] != identity[k])
        if changed:
            raise SuiteError(f"cannot resume {config.out}: it was run with different {', '.join(changed)}")
    records = load_results(results_file, repair=True)
    write_json_atomic(run_file, {"identity": identity, "suite_path": str(config.suite.path),
                                 "versions": versions(), "machine": machine(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    return records


def with_new_defaults(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` agent settings plus the RafaConfig fields added since it was written, at their defaults.

    A run recorded before a field existed behaved as that field's default does, so resuming it with
    the default is the same evaluation; any other value still counts as a change.
    """
    defaults = json.loads(json.dumps(dataclasses.asdict(RafaConfig())))
    return {**{k: defaults[k] for k in new if k not in old and k in defaults}, **old}


def machine() -> dict[str, Any]:
    """Where the numbers were measured, for reports."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return {"host_cpu": models[0] if models else platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run_suite(config: EvalConfig, *, resume: bool = False,
              on_result: Callable[[dict[str, Any], int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run every unfinished episode; returns all records (old and new), one per job.

    ``on_result(record, done, total)`` is called after each episode is on disk (progress bars).
    A stop signal raises :class:`EvalInterrupted` once the workers are gone and the episodes in
    flight are dropped; what was recorded stays, and ``--resume`` runs the rest.
    """
    if config.executor == "ray":  # Ray absent, or no cluster at --address: said before anything is written
        import_ray()
        if config.address is not None:
            check_address(config.address)
    done = {r["episode"]: r for r in prepare(config, resume)}
    todo = [job for job in config.jobs() if job.key not in done]
    total = len(config.jobs())
    with _stop_on_signals():
        try:
            with ResultsWriter(config.out / RESULTS_FILE) as writer, closing(_execute(config, todo)) as records:
                for record in records:
                    writer.append(record)
                    done[record["episode"]] = record
                    if on_result is not None:
                        on_result(record, len(done), total)
        except KeyboardInterrupt as exc:  # workers are gone (see _execute); now drop what they left
            _ignore_stop_signals()
            _drop_unrecorded(config, todo)
            saved = len(load_results(config.out / RESULTS_FILE))
            signum = exc.signum if isinstance(exc, EvalInterrupted) else signal.SIGINT
            raise EvalInterrupted(signum, config.out, saved, total) from None
        except BrokenProcessPool:  # a worker was killed (OOM killer): the others are stopped, same cleanup
            _drop_unrecorded(config, todo)
            raise
    return [done[job.key] for job in config.jobs()]


def _execute(config: EvalConfig, jobs: list[Job]) -> Iterator[dict[str, Any]]:
    """Records in completion order, from the config's executor (in this process for one pool worker)."""
    if not jobs:
        return
    executor = make_executor(config.executor, config.workers, address=config.address, threads=config.threads)
    setup = Setup(_load_planner, (config.planner, config.planner_adapter, config.device, config.dtype))
    with closing(executor.map(functools.partial(run_job, config), jobs, setup)) as results:
        for job, value in results:
            yield lost_record(config, job, value) if isinstance(value, WorkerLost) else value
