"""Run one goal in a fresh world and leave its record: ``episode.jsonl``, ``summary.json``, ``video.mp4``.

Shared by ``embodia run`` and the evaluation harness, so what a user watches and
what a benchmark counts come from the same code path.
"""

from __future__ import annotations

import platform
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym

from agents.goals import GoalResolution, resolve_goal
from agents.llm.base import LLM, LLMUsage
from agents.memory import Memory
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import ActionStep, FinalStep, PlanningStep, Step
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


@dataclass
class EpisodeResult:
    """Where the episode's files are and how it ended."""

    out_dir: Path
    summary: dict[str, Any]

    @property
    def success(self) -> bool:
        return bool(self.summary["success"])


def run_episode(goal_text: str | Goal, *, seed: int, out_dir: str | Path, llm: LLM | None,
                config: RafaConfig | None = None, video: bool = True,
                on_step: Callable[[Step], None] | None = None,
                make_agent: AgentFactory = RafaAgent) -> EpisodeResult:
    """Resolve ``goal_text``, pursue it in a fresh Crafter world seeded with ``seed``, record everything.

    Never raises for what happens inside the episode: an unknown goal, an env
    crash or a budget overrun end it as failed, with the reason in the summary.
    A ``Goal`` is taken as is (evaluation suites name goals exactly, and the
    open-ended objective is no user phrase); ``make_agent`` lets the evaluation
    baselines run through this same code path.
    """
    config = config or RafaConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = EpisodeLog(out_dir / LOG_FILE, mode="w")  # a rerun replaces a half-written episode
    writer = VideoWriter(out_dir / VIDEO_FILE) if video else None
    usage_before = llm.usage.copy() if llm is not None else LLMUsage()
    started = time.perf_counter()
    goal = goal_text if isinstance(goal_text, Goal) else None
    goal_text = goal.phrase if goal else goal_text
    summary: dict[str, Any] = {"goal": goal_text, "seed": seed, "llm": llm.name if llm else None,
                               "success": False, "versions": versions()}
    decision_ms: list[float] = []
    final: FinalStep | None = None
    try:
        resolution = (GoalResolution(goal_text, goal, goal, 1.0, f"goal: {goal_text}") if goal
                      else resolve_goal(goal_text, llm))
        summary["goal_achievement"] = resolution.goal.achievement if resolution.goal else None
        log.write("goal", request=goal_text, resolved=summary["goal_achievement"], message=resolution.message)
        if resolution.goal is None:
            summary.update(reason=resolution.message,
                           closest_goal=resolution.closest.phrase if resolution.closest else None)
        else:
            env = RecordEpisode(CrafterEnv(seed=seed, length=config.max_env_steps), log, writer, ACTION_NAMES)
            if config.imagination:  # imagination starts from the recent real frames
                from agents.imagination import ObservationHistory

                env = ObservationHistory(env)
            env.reset(seed=seed)
            agent = make_agent(env, llm, Memory(), config)
            imagined, vetoes = [], 0
            for step in agent.run(resolution.goal):
                log.write(type(step).__name__, **step.to_record())
                if isinstance(step, ActionStep) and step.imagined is not None:
                    imagined.append(step.imagined)
                if isinstance(step, PlanningStep):
                    vetoes += len(step.vetoed)
                if isinstance(step, PlanningStep) and step.llm_ms > 0:
                    decision_ms.append(step.decision_ms)
                if isinstance(step, FinalStep):
                    final = step
                if on_step is not None:
                    on_step(step)
            summary.update(success=final.success, reason=final.reason, env_steps=final.env_steps,
                           decisions=final.decisions, error=final.error,
                           achievements=sorted(k for k, v in env.unwrapped.achievements.items() if v > 0),
                           reflections=len(agent.memory.of_kind("reflection")))
            if config.imagination:
                from agents.imagination import imagination_summary

                summary["imagination"] = imagination_summary(imagined, vetoes)
    except Exception as exc:  # an env or model crash ends this episode as failed, with its traceback
        summary.update(success=False, reason=f"{type(exc).__name__}: {exc}", error=traceback.format_exc())
    finally:
        if writer is not None:
            writer.close()
        usage = (llm.usage - usage_before) if llm is not None else LLMUsage()
        summary.update(llm_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                       completion_tokens=usage.completion_tokens,
                       decision_ms_median=statistics.median(decision_ms) if decision_ms else 0.0,
                       decision_ms_p95=percentile(decision_ms, 95),
                       wall_seconds=round(time.perf_counter() - started, 3))
        log.write("summary", **summary)
        log.close()
        write_json_atomic(out_dir / SUMMARY_FILE, summary)
    return EpisodeResult(out_dir, summary)

