"""RAFA's critic: scores each feasible first step by the future the skill model chains from it.

The value of a first step is minus the skill calls its plan still needs to reach the goal (always
the full chain, whatever ``horizon`` keeps of it for display), minus penalties for vitals left low,
for recent failures of the same skill and for hostile creatures left unfought. The LLM's prior
and imagination only settle near-ties on top of this value (``agents.rafa``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agents.skill_model import Belief, SkillModel
from agents.steps import Candidate
from tools.skills.crafter import SKILLS


@dataclass(frozen=True)
class Critic:
    """The critic's weights; their defaults and meaning live once, in ``RafaConfig`` (:meth:`from_config`)."""

    horizon: int
    vital_thresholds: dict[str, int]
    night_energy_threshold: int
    vital_weight: float
    failure_penalty: float
    threat_weight: float
    fight_min_health: int

    @classmethod
    def from_config(cls, config: object) -> Critic:
        """The critic a ``RafaConfig`` (or anything with the same fields) describes."""
        values = {name: getattr(config, name) for name in cls.__dataclass_fields__}
        values["vital_thresholds"] = dict(values["vital_thresholds"])
        return cls(**values)

    def thresholds(self, belief: Belief) -> dict[str, int]:
        """Vital levels below which a future is penalised; energy rises at night once a shelter can be dug."""
        thresholds = dict(self.vital_thresholds)
        if belief.night and belief.count("wood_pickaxe"):
            thresholds["energy"] = self.night_energy_threshold
        return thresholds

    def candidates(self, model: SkillModel, belief: Belief, achievement: str, recent_failures: list[str | None],
                   excluded: Iterable[str] = ()) -> list[Candidate]:
        """Every feasible skill (not in ``excluded``) from which a plan reaches ``achievement``, scored."""
        excluded = set(excluded)
        thresholds = self.thresholds(belief)
        candidates = []
        for name in model.skills:
            prediction, after = model.predict(belief, name)
            if not prediction.feasible or name in excluded:
                continue
            rest = [] if prediction.achievement == achievement else model.plan(after, achievement)
            if rest is None:
                continue
            cost = 1.0 + len(rest)
            shortfall = sum(max(0, level - after.count(v)) for v, level in thresholds.items())
            fights = SKILLS[name].verb == "fight" and belief.count("health") > self.fight_min_health
            unfought = belief.threats - {SKILLS[name].target} if fights else belief.threats
            critic = (-cost - self.vital_weight * shortfall - self.failure_penalty * recent_failures.count(name)
                      - self.threat_weight * len(unfought))
            candidates.append(Candidate(future=[name, *rest][: self.horizon], cost_to_go=cost, critic=critic,
                                        value=critic))
        return candidates
