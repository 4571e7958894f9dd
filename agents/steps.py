"""The records the agent's run loop yields: planning, action and final steps.

Like smolagents' memory steps, they are plain dataclasses, errors are stored in
them (never raised), and a consumer (terminal, log, web UI) subscribes by type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Candidate:
    """One imagined future: its first step is what would be executed now."""

    future: list[str]
    cost_to_go: float
    critic: float
    llm_logprob: float | None
    value: float
    imagined_success: float | None = None  # share of imagined rollouts in which the future's start succeeds

    @property
    def first(self) -> str:
        return self.future[0]


@dataclass
class PlanningStep:
    """RAFA "reason for future": candidates evaluated with the model and critic, one chosen."""

    index: int
    goal: str
    state: str
    candidates: list[Candidate]
    chosen: Candidate | None
    thought: str
    llm_ms: float = 0.0
    decision_ms: float = 0.0
    error: str | None = None
    prompt: list[dict[str, str]] | None = None  # the exact planner messages (training traces)
    prompt_version: str = ""
    imagined: dict[str, Any] | None = None  # imagination's outcome for the chosen first step (RIG)
    vetoed: list[dict[str, Any]] = field(default_factory=list)  # imagined outcomes that revised a choice

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ActionStep:
    """RAFA "act for now": the first step executed, its predicted and actual outcome."""

    index: int
    tool: str
    arguments: dict[str, Any]
    predicted: str
    ok: bool
    outcome: str
    matched: bool
    env_steps: int
    achievements: list[str]
    reflection: str | None = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    imagined: dict[str, Any] | None = None  # imagined vs real outcome, when imagination is on

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FinalStep:
    """How the goal ended, with the reason in words."""

    goal: str
    success: bool
    reason: str
    env_steps: int
    decisions: int
    error: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


Step = PlanningStep | ActionStep | FinalStep
