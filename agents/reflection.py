"""RAFA's update: compare a skill's real outcome with the model's prediction; a contradiction becomes a lesson.

A lesson that names a station the agent placed (the table is not within reach after all) also
makes the model distrust its memory of that station (``distrust``); any other lesson only warns
the planner (shown in its prompt). Both texts are templates (``prompts/templates``).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.skill_model import Prediction
from prompts import render_text
from tools.base import ToolResult
from tools.envs.crafter import VITALS
from tools.skills.crafter import SKILLS


def compare(prediction: Prediction, result: ToolResult) -> tuple[bool, str]:
    """Did the real outcome confirm the prediction? Returns (matched, outcome in words)."""
    delta = result.data.get("inventory_delta", {})
    gained = ", ".join(f"{n:+d} {item}" for item, n in delta.items() if n) or "no inventory change"
    if not result.ok:
        return False, f"failed: {result.data.get('reason') or result.text}"
    missing = [item for item, n in prediction.gains.items() if n > 0 and delta.get(item, 0) <= 0
               and item not in VITALS]
    if prediction.achievement and prediction.achievement not in result.data.get("achievements_unlocked", []) \
            and not missing:
        missing = [prediction.achievement]
    if missing:
        return False, f"succeeded but without {', '.join(missing)} ({gained})"
    return True, f"ok ({gained})"


@dataclass(frozen=True)
class Reflection:
    """A lesson from one contradicted prediction; ``distrust`` names a placed station not to count on ("": none)."""

    text: str
    distrust: str


def reflect(skill: str, prediction: Prediction, result: ToolResult, actual: str) -> Reflection:
    """Turn a contradicted prediction into a lesson and, where the failure names a station, a distrust."""
    reason = str(result.data.get("reason") or "")
    wrong = [thing for thing in SKILLS[skill].near if thing in reason]
    thing = wrong[0] if wrong else ""
    lesson = render_text("lesson", skill=skill, thing=thing)
    text = render_text("reflection", skill=skill, expected=prediction.describe(), actual=actual, reason="",
                       lesson=lesson)
    return Reflection(text, thing)
