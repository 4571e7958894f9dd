"""The records the agent's run loop yields: planning, action and final steps.

Like smolagents' memory steps, they are plain dataclasses, errors are stored in
them (never raised), and a consumer (terminal, log, web UI) subscribes by type
(:class:`StepCallbacks`). Candidates and planning/action steps are built with keywords.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(kw_only=True)
class Candidate:
    """One imagined future: its first step is what would be executed now.

    ``cost_to_go`` counts the skill calls of the whole chain to the goal (inf: the greedy planner
    does not plan), ``future`` only its first ``horizon`` skills.
    """

    future: list[str]
    cost_to_go: float
    critic: float
    llm_logprob: float | None = None
    value: float
    imagined_success: float | None = None  # share of imagined rollouts in which the future's start succeeds

    @property
    def first(self) -> str:
        return self.future[0]


@dataclass(kw_only=True)
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


@dataclass(kw_only=True)
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
StepCallback = Callable[[Any], None]


class StepCallbacks:
    """Callbacks keyed by step type (smolagents' ``step_callbacks={ActionStep: fn}``): the one way to follow a run.

    ``callbacks(step)`` calls every callback registered for ``type(step)``, in registration order.
    """

    def __init__(self, callbacks: dict[type, StepCallback | list[StepCallback]] | None = None) -> None:
        self._by_type: dict[type, list[StepCallback]] = {}
        for step_type, found in (callbacks or {}).items():
            for callback in found if isinstance(found, list) else [found]:
                self.on(step_type, callback)

    def on(self, step_type: type, callback: StepCallback) -> None:
        """Call ``callback`` with every step of ``step_type``."""
        self._by_type.setdefault(step_type, []).append(callback)

    def __call__(self, step: Step) -> Step:
        for callback in self._by_type.get(type(step), []):
            callback(step)
        return step
