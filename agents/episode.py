"""Run one goal in a fresh world and leave its record: ``episode.jsonl``, ``summary.json``, ``video.mp4``.

Shared by ``embodia run`` and the evaluation harness, so what a user watches and
what a benchmark counts come from the same code path. The world comes from an env
factory; the log, the statistics of the summary and the caller's display all follow
the run through the same typed step callbacks (:class:`~agents.steps.StepCallbacks`).
"""

from __future__ import annotations

import platform
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym

from agents.goals import GoalResolution, resolve_goal
from agents.llm.base import LLM, LLMUsage
from agents.memory import Memory
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import ActionStep, FinalStep, PlanningStep, Step, StepCallbacks
from tools.envs.crafter import ACTION_NAMES, CrafterEnv
from tools.envs.crafter_goals import Goal
from tools.episodes import LOG_FILE, SUMMARY_FILE, VIDEO_FILE, EpisodeLog, RecordEpisode, VideoWriter, write_json_atomic


def versions() -> dict[str, str]:
    """Versions of what shaped the result, stored in every summary."""
    found = {"python": platform.python_version()}
    for dist in ("embodia", "torch", "transformers", "crafter", "gymnasium"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "missing"
    return found


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values): simple and exact for small samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


class Agent(Protocol):
    """What ``run_episode`` drives: RAFA and the evaluation baselines alike."""

    memory: Memory

    def run(self, goal: Goal) -> Iterator[Step]: ...


#: Builds the agent for one episode from (env, llm, memory, config); ``RafaAgent`` itself is one.
AgentFactory = Callable[[gym.Env, LLM | None, Memory, RafaConfig], Agent]
#: Builds the bare world of one episode from (seed, config); ``run_episode`` adds the recorder around it.
EnvFactory = Callable[[int, RafaConfig], gym.Env]


def crafter_env(seed: int, config: RafaConfig) -> gym.Env:
    """The default world: Crafter seeded with ``seed``, as long as the env-step budget."""
    return CrafterEnv(seed=seed, length=config.max_env_steps)


@dataclass
class EpisodeResult:
    """Where the episode's files are and how it ended."""

    out_dir: Path
    summary: dict[str, Any]

    @property
    def success(self) -> bool:
        return bool(self.summary["success"])


@dataclass
class EpisodeStats:
    """What the summary counts, gathered from the steps as they stream by (register with :meth:`register`)."""

    decision_ms: list[float] = field(default_factory=list)  # decisions that consulted the LLM
    imagined: list[dict[str, Any]] = field(default_factory=list)  # imagined vs real, one per imagined action
    vetoes: int = 0
    final: FinalStep | None = None

    def register(self, callbacks: StepCallbacks) -> None:
        callbacks.on(PlanningStep, self._planning)
        callbacks.on(ActionStep, self._action)
        callbacks.on(FinalStep, self._final)

    def _planning(self, step: PlanningStep) -> None:
        self.vetoes += len(step.vetoed)
        if step.llm_ms > 0:
            self.decision_ms.append(step.decision_ms)

    def _action(self, step: ActionStep) -> None:
        if step.imagined is not None:
            self.imagined.append(step.imagined)

    def _final(self, step: FinalStep) -> None:
        self.final = step

    def timing(self) -> dict[str, float]:
        return {"decision_ms_median": statistics.median(self.decision_ms) if self.decision_ms else 0.0,
                "decision_ms_p95": percentile(self.decision_ms, 95)}


def resolve(goal: str | Goal | GoalResolution, llm: LLM | None) -> GoalResolution:
    """Text is resolved to a goal; a ``Goal`` is taken as is (suites name goals exactly, open-ended is no phrase),
    and so is a request the caller already resolved (``embodia run`` shows what it understood first)."""
    if isinstance(goal, GoalResolution):
        return goal
    if isinstance(goal, Goal):
        return GoalResolution(goal.phrase, goal, goal, 1.0, f"goal: {goal.phrase}")
    return resolve_goal(goal, llm)


def run_episode(goal_text: str | Goal | GoalResolution, *, seed: int, out_dir: str | Path, llm: LLM | None,
                config: RafaConfig | None = None, video: bool = True,
                step_callbacks: StepCallbacks | None = None,
                make_agent: AgentFactory = RafaAgent, make_env: EnvFactory = crafter_env) -> EpisodeResult:
    """Resolve ``goal_text``, pursue it in a fresh world from ``make_env(seed, config)``, record everything.

    A compound request ("get wood and then place a table") runs its parts in order in the one world and
    succeeds only when every part does; ``summary["parts"]`` records each. Never raises for what happens
    inside the episode: an unknown goal, an env
    crash or a budget overrun end it as failed, with the reason in the summary.
    ``step_callbacks`` see every step after the log and the statistics did;
    ``make_agent`` lets the evaluation baselines run through this same code path.
    """
    config = config or RafaConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = EpisodeLog(out_dir / LOG_FILE, mode="w")  # a rerun replaces a half-written episode
    writer = VideoWriter(out_dir / VIDEO_FILE) if video else None
    usage_before = llm.usage.copy() if llm is not None else LLMUsage()
    started = time.perf_counter()
    phrase = (goal_text.phrase if isinstance(goal_text, Goal) else
              goal_text.request if isinstance(goal_text, GoalResolution) else goal_text)
    summary: dict[str, Any] = {"goal": phrase, "seed": seed, "llm": llm.name if llm else None,
                               "success": False, "versions": versions()}
    stats = EpisodeStats()
    try:
        resolution = resolve(goal_text, llm)
        summary["goal_achievement"] = resolution.goal.achievement if resolution.goal else None
        goals = resolution.parts or ((resolution.goal,) if resolution.goal else ())
        compound = ({"plan": [g.achievement for g in goals], "skipped": list(resolution.skipped)}
                    if len(goals) > 1 or resolution.skipped else {})  # a single goal's records stay as they were
        log.write("goal", request=summary["goal"], resolved=summary["goal_achievement"], message=resolution.message,
                  **compound)
        if resolution.goal is None:
            summary.update(reason=resolution.message,
                           closest_goal=resolution.closest.phrase if resolution.closest else None)
            if resolution.options:  # unsure: what the user may mean
                summary["options"] = [g.achievement for g in resolution.options]
        else:
            env = RecordEpisode(make_env(seed, config), log, writer, ACTION_NAMES)
            if config.imagination:  # imagination starts from the recent real frames
                from agents.imagination import ObservationHistory

                env = ObservationHistory(env)
            env.reset(seed=seed)
            acting = env
            if config.perception == "pixels":  # the agent gets the frame, reward and episode end; nothing else
                from tools.envs.pixels import PixelEnv

                acting = PixelEnv(env)
            agent = make_agent(acting, llm, Memory(), config)
            callbacks = StepCallbacks()
            for step_type in (PlanningStep, ActionStep, FinalStep):
                callbacks.on(step_type, lambda step: log.write(type(step).__name__, **step.to_record()))
            stats.register(callbacks)
            finals: list[FinalStep] = []
            for goal in goals:  # a compound request's parts, in order, in this one world
                for step in agent.run(goal):
                    callbacks(step)
                    if step_callbacks is not None:
                        step_callbacks(step)
                finals.append(stats.final)
                if not stats.final.success:  # later parts build on this one
                    break
            final = stats.final
            if compound:
                summary.update(compound, parts=[{"achievement": g.achievement, **f.to_record()}
                                                for g, f in zip(goals, finals, strict=False)])
                final = FinalStep(final.goal, len(finals) == len(goals) and final.success,
                                  f"{sum(f.success for f in finals)}/{len(goals)} parts done: {final.reason}",
                                  sum(f.env_steps for f in finals), sum(f.decisions for f in finals), final.error)
            summary.update(success=final.success, reason=final.reason, env_steps=final.env_steps,
                           decisions=final.decisions, error=final.error,
                           achievements=sorted(k for k, v in env.unwrapped.achievements.items() if v > 0),
                           reflections=len(agent.memory.of_kind("reflection")),
                           death_cause=getattr(env.unwrapped, "death_cause", None))  # None: alive, or no Crafter
            if config.imagination:
                from agents.imagination import imagination_summary

                summary["imagination"] = imagination_summary(stats.imagined, stats.vetoes)
    except Exception as exc:  # an env or model crash ends this episode as failed, with its traceback
        summary.update(success=False, reason=f"{type(exc).__name__}: {exc}", error=traceback.format_exc())
    finally:
        if writer is not None:
            writer.close()
        usage = (llm.usage - usage_before) if llm is not None else LLMUsage()
        summary.update(llm_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                       completion_tokens=usage.completion_tokens, **stats.timing(),
                       wall_seconds=round(time.perf_counter() - started, 3))
        log.write("summary", **summary)
        log.close()
        write_json_atomic(out_dir / SUMMARY_FILE, summary)
    return EpisodeResult(out_dir, summary)
