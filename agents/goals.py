"""From the user's words to a goal the world can test, or an honest "cannot do that here".

Known phrasings are matched by :func:`tools.envs.crafter_goals.match_goal`. When
that is unsure, the LLM picks the closest known goal by ``score`` (constrained to
the 22 goal phrases, so it cannot invent one) — and the agent *says* so instead of
silently running something the user did not ask for. A request over
:data:`~tools.envs.crafter_goals.MAX_REQUEST_CHARS` is refused before any scoring, and a model that
fails while scoring is reported in the message (the keyword candidate still stands), never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.llm.base import LLM
from prompts import render_messages
from tools.envs.crafter_goals import GOALS, MAX_REQUEST_CHARS, Goal, match_goal


@dataclass(frozen=True)
class GoalResolution:
    """The goal to pursue (None when the request is not a known goal) and what to tell the user."""

    request: str
    goal: Goal | None
    closest: Goal | None
    confidence: float
    message: str
    model_error: str | None = None  # why the LLM could not rank the goals, when it failed


def request_too_long(request: str) -> str | None:
    """The message refusing an over-long request, or None when its length is fine."""
    if len(request) <= MAX_REQUEST_CHARS:
        return None
    return (f"That request is {len(request):,} characters long; a goal is at most {MAX_REQUEST_CHARS} "
            f"(say it in one sentence, e.g. 'make a stone pickaxe').")


def resolve_goal(request: str, llm: LLM | None = None) -> GoalResolution:
    """Map a request to one of the env's goals; unknown requests get the closest goal named, not run."""
    too_long = request_too_long(request)
    if too_long is not None:
        return GoalResolution(request, None, None, 0.0, too_long)
    match = match_goal(request)
    if match.goal is not None:
        return GoalResolution(request, match.goal, match.goal, match.confidence, f"goal: {match.goal.phrase}")
    closest = match.candidates[0][0] if match.candidates else None
    model_error = None
    if llm is not None:
        goals = list(GOALS.values())
        messages = render_messages("goal_match", request=request, goals=[g.phrase for g in goals])
        try:
            scores = llm.score(messages, [g.phrase for g in goals])
            closest = goals[max(range(len(goals)), key=scores.__getitem__)]
        except Exception as exc:  # the keyword candidate stands, and the user is told the model failed
            model_error = f"{type(exc).__name__}: {exc}"
    hint = f" The closest known goal is {closest.phrase!r}." if closest else ""
    if model_error is not None:
        hint += f" (The planner could not rank the goals -- {model_error}; the hint comes from keywords.)"
    message = (f"I cannot do {request!r} here: it is not one of the {len(GOALS)} things this world can test "
               f"(Crafter's achievements, e.g. 'collect wood', 'make a stone pickaxe').{hint}")
    return GoalResolution(request, None, closest, match.confidence, message, model_error)
