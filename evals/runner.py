"""Run an agent over a suite's (goal, seed) episodes: in parallel, resumable, one durable line per episode.

Every episode goes through :func:`agents.episode.run_episode` — the code path of ``embodia run``
— into ``OUT/episodes/<goal>/seed-<n>/``. Workers are processes (``spawn``: no torch state is
inherited), each loading its own planner once. The parent alone writes ``results.jsonl``, so
lines never interleave, and ``run.json`` pins what was run so ``--resume`` cannot mix two
different evaluations into one set of numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.episode import run_episode, versions
from agents.llm.adapters import ADAPTER_WEIGHTS
from agents.llm.base import LLM
from agents.rafa import RafaConfig
from evals.agents import get_agent
from evals.open_ended import OPEN_GOAL
from evals.store import RESULTS_FILE, ResultsWriter, load_results
from evals.suite import OPEN, Suite, SuiteError
from tools.envs.crafter_goals import GOALS
from tools.episodes import VIDEO_FILE, write_json_atomic

RUN_FILE = "run.json"
VideoMode = Literal["none", "failures", "all"]
#: Summary fields that measure time, not behaviour: the only ones allowed to differ between reruns.
TIMING_FIELDS = ("wall_seconds", "decision_ms_median", "decision_ms_p95")


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

    def __post_init__(self) -> None:
        self.agent_config()  # an unknown agent, or a world model for an agent that does not imagine
        if self.workers < 1 or self.threads < 0:
            raise ValueError(f"workers must be >= 1 and threads >= 0, got {self.workers} and {self.threads}")
        if self.video not in ("none", "failures", "all"):
            raise ValueError(f"video must be none, failures or all, got {self.video!r}")
        if self.num_seeds is not None and self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")

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
        """The agent's settings for this suite, with ``world_model`` when one was given."""
        config = get_agent(self.agent).config(self.suite)
        return dataclasses.replace(config, world_model=self.world_model) if self.world_model else config

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
            from agents.imagination import DEFAULT_CHECKPOINT
            from world_models.calibration import CALIBRATION_FILE
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


def _load_planner(spec: str | None, adapter: str | None, device: str, dtype: str,
                  threads: int | None = None) -> None:
    """Worker start-up: bound torch threads so processes do not fight over cores, load the LLM once.

    Two torch processes spinning two threads each on two cores ran an imagining eval ~10x slower here.
    """
    global _planner
    if threads:
        import torch

        torch.set_num_threads(threads)
    if spec is not None:
        from agents.llm import make_llm

        _planner = make_llm(spec, device=device, dtype=dtype, adapter=adapter)


def run_job(config: EvalConfig, job: Job) -> dict[str, Any]:
    """Run one episode and return its results line; never raises, a crash becomes a failed record."""
    spec = get_agent(config.agent)
    folder = config.out / "episodes" / job.goal / f"seed-{job.seed}"
    record: dict[str, Any] = {"episode": job.key, "goal": job.goal, "seed": job.seed, "agent": config.agent,
                              "llm": config.planner, "dir": str(folder.relative_to(config.out))}
    try:
        goal = OPEN_GOAL if job.goal == OPEN else GOALS[job.goal]
        result = run_episode(goal, seed=job.seed, out_dir=folder, llm=_planner, config=config.agent_config(),
                             video=config.video != "none", make_agent=spec.make_agent(config.suite))
        summary = {k: v for k, v in result.summary.items() if k != "versions"}
        if config.video == "failures" and result.success:
            (folder / VIDEO_FILE).unlink(missing_ok=True)
        record.update(summary, status="ok", goal=job.goal, goal_phrase=summary["goal"])
        record["video"] = str((folder / VIDEO_FILE).relative_to(config.out)) if (folder / VIDEO_FILE).exists() \
            else None
    except Exception as exc:  # recorded as a failed episode; the suite goes on
        record.update(status="error", success=False, reason=f"{type(exc).__name__}: {exc}",
                      error=traceback.format_exc(), achievements=[], env_steps=0)
    return record


# --- the suite ---
def prepare(config: EvalConfig, resume: bool) -> list[dict[str, Any]]:
    """Check ``OUT`` against the config; return the records already finished there."""
    run_file, results_file = config.out / RUN_FILE, config.out / RESULTS_FILE
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
    """
    done = {r["episode"]: r for r in prepare(config, resume)}
    todo = [job for job in config.jobs() if job.key not in done]
    total = len(config.jobs())
    with ResultsWriter(config.out / RESULTS_FILE) as writer:
        for record in _execute(config, todo):
            writer.append(record)
            done[record["episode"]] = record
            if on_result is not None:
                on_result(record, len(done), total)
    return [done[job.key] for job in config.jobs()]


def _execute(config: EvalConfig, jobs: list[Job]) -> Iterator[dict[str, Any]]:
    """Records in completion order: in this process for one worker, else from a spawn pool."""
    if not jobs:
        return
    if config.workers == 1:
        _load_planner(config.planner, config.planner_adapter, config.device, config.dtype, config.threads)
        for job in jobs:
            yield run_job(config, job)
        return
    threads = config.threads or max(1, (os.cpu_count() or 1) // config.workers)
    with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_load_planner,
                             initargs=(config.planner, config.planner_adapter, config.device, config.dtype,
                                       threads)) as pool:
        futures = [pool.submit(run_job, config, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
