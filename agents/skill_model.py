"""A transition model built from the skills' declared effects, and a planner over it.

RAFA needs a model of the world to evaluate candidate futures before acting.
Until the learned world model stands in (world_models/), this one reads each
skill's ``requires``/``consumes``/``gives``/``near`` and predicts the next belief.
It is deliberately a *belief* model: it trusts that things the agent placed stay
within reach until a reflection says otherwise (``distrust``), which is how the
loop learns from a contradicted prediction instead of being told the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tools.skills.crafter import SkillSpec

#: Skills that restore a vital to full rather than adding one unit.
RESTORES = {"eat": "food", "drink": "drink", "sleep": "energy"}
MAX_PLAN_LENGTH = 64


@dataclass(frozen=True)
class Belief:
    """What the planner believes: inventory and vitals, things within reach, hostile creatures close by."""

    inventory: Mapping[str, int]
    reachable: frozenset[str] = frozenset()
    threats: frozenset[str] = frozenset()
    night: bool = False
    achievements: Mapping[str, int] = field(default_factory=dict)

    def count(self, item: str) -> int:
        return int(self.inventory.get(item, 0))


@dataclass(frozen=True)
class Prediction:
    """The model's forecast for one skill call, compared later with the real outcome."""

    skill: str
    feasible: bool
    reason: str
    gains: dict[str, int]
    achievement: str | None

    def describe(self) -> str:
        if not self.feasible:
            return f"infeasible ({self.reason})"
        parts = [f"+{n} {item}" for item, n in self.gains.items() if n > 0]
        if self.achievement:
            parts.append(f"achievement {self.achievement}")
        return ", ".join(parts) or "no inventory change"


class SkillModel:
    """Predict skill outcomes from declared effects and plan by backward chaining."""

    def __init__(self, skills: Mapping[str, SkillSpec]) -> None:
        self.skills = dict(skills)
        self.producers: dict[str, str] = {}
        for spec in self.skills.values():
            for item, amount in spec.gives.items():
                if amount > 0 and spec.verb in ("collect", "make", "place"):
                    self.producers.setdefault(item, spec.name)
        self.placers = {spec.target: spec.name for spec in self.skills.values() if spec.verb == "place"}
        self.by_achievement: dict[str, str] = {}
        for spec in self.skills.values():
            if spec.achievement:
                self.by_achievement.setdefault(spec.achievement, spec.name)

    # --- one step ---
    def check(self, belief: Belief, name: str) -> tuple[bool, str]:
        """Whether ``name`` is possible under ``belief``, and if not, what is missing."""
        spec = self.skills[name]
        for item, amount in spec.requires.items():
            if belief.count(item) < amount:
                return False, f"need {amount} {item}, have {belief.count(item)}"
        for thing in spec.near:
            if thing not in belief.reachable:
                return False, f"no {thing} within reach"
        if spec.verb == "sleep" and belief.threats:
            return False, f"a {sorted(belief.threats)[0]} is too close to sleep"
        return True, ""

    def predict(self, belief: Belief, name: str) -> tuple[Prediction, Belief]:
        """Forecast the outcome of running skill ``name`` and the belief after it."""
        spec = self.skills[name]
        feasible, reason = self.check(belief, name)
        gains = {item: -n for item, n in spec.consumes.items()}
        for item, n in spec.gives.items():
            gains[item] = gains.get(item, 0) + n
        if spec.verb in RESTORES:
            vital = RESTORES[spec.verb]
            gains[vital] = max(gains.get(vital, 0), 9 - belief.count(vital))
        if not feasible:
            return Prediction(name, False, reason, {}, None), belief
        prediction = Prediction(name, True, "", gains, spec.achievement)
        inventory = dict(belief.inventory)
        for item, delta in gains.items():
            inventory[item] = min(9, max(0, inventory.get(item, 0) + delta))
        reachable = belief.reachable | ({spec.target} if spec.verb == "place" else set())
        achievements = dict(belief.achievements)
        if spec.achievement:
            achievements[spec.achievement] = achievements.get(spec.achievement, 0) + 1
        return prediction, replace(belief, inventory=inventory, reachable=frozenset(reachable),
                                   achievements=achievements)

    # --- many steps ---
    def plan(self, belief: Belief, achievement: str) -> list[str] | None:
        """Shortest-effort skill sequence that unlocks ``achievement`` from ``belief`` (None if unknown).

        Backward chaining over preconditions: to run a skill, first place what
        must be near it, then produce what it requires, re-checking after every
        step because placing a table consumes the wood a tool would need.
        """
        target = self.by_achievement.get(achievement)
        if target is None:
            return None
        steps: list[str] = []
        if self._achieve(belief, target, steps, depth=0) is None:
            return None
        return steps

    def _achieve(self, belief: Belief, name: str, steps: list[str], depth: int) -> Belief | None:
        if depth > 12 or len(steps) > MAX_PLAN_LENGTH:
            return None
        state = belief
        spec = self.skills[name]
        for _ in range(MAX_PLAN_LENGTH):
            missing_near = [t for t in spec.near if t not in state.reachable]
            missing_items = [i for i, n in spec.requires.items() if state.count(i) < n]
            if missing_near:
                helper = self.placers.get(missing_near[0])
            elif missing_items:
                helper = self.producers.get(missing_items[0])
            else:
                break
            if helper is None or helper == name:
                return None
            reached = self._achieve(state, helper, steps, depth + 1)
            if reached is None:
                return None
            state = reached
        else:
            return None
        steps.append(name)
        _, after = self.predict(state, name)
        return after
