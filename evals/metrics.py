"""Numbers from episode records: success with confidence intervals, cost, and the official Crafter score.

Success rates come with Wilson 95 % intervals because suites are small (a handful of seeds per
goal), where the normal approximation gives intervals outside [0, 1] or of zero width.

The Crafter score (Hafner, 2021) is ``exp(mean_i ln(1 + s_i)) - 1`` over the 22 achievements,
with ``s_i`` the success rate of achievement i in percent. For an open-ended suite ``s_i`` is the
share of episodes that unlocked achievement i — the leaderboard's definition, so the number
compares with published ones (Human 50.5, SPRING 27.3, DreamerV3 14.5, PPO 4.6, Random 1.6).
For a goal suite covering all 22 achievements, ``s_i`` is the success rate of goal i (each
pursued alone): a goal-conditioned score, reported under that name, not comparable to the
leaderboard.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tools.envs.crafter import ACHIEVEMENTS
from tools.envs.crafter_deaths import DEATH_CAUSES
from tools.stats import wilson_interval

PUBLISHED_SCORES = {"Human experts": 50.5, "SPRING (GPT-4)": 27.3, "DreamerV3": 14.5, "PPO": 4.6, "Random": 1.6}


def crafter_score(rates_percent: Mapping[str, float]) -> float:
    """Official Crafter score from per-achievement success rates in percent (missing ones count as 0)."""
    logs = [math.log(1 + rates_percent.get(name, 0.0)) for name in ACHIEVEMENTS]
    return math.exp(sum(logs) / len(logs)) - 1


@dataclass
class Stats:
    """Success and mean cost over a group of episodes."""

    name: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_env_steps: float
    mean_llm_calls: float
    mean_tokens: float
    mean_wall_seconds: float
    errors: int

    @classmethod
    def of(cls, name: str, records: Sequence[Mapping[str, Any]]) -> Stats:
        n = len(records)
        wins = sum(bool(r["success"]) for r in records)

        def mean(key: Any) -> float:
            return statistics.fmean(key(r) for r in records) if records else 0.0

        return cls(name, n, wins, wins / n if n else 0.0, *wilson_interval(wins, n),
                   mean(lambda r: r.get("env_steps") or 0), mean(lambda r: r.get("llm_calls") or 0),
                   mean(lambda r: (r.get("prompt_tokens") or 0) + (r.get("completion_tokens") or 0)),
                   mean(lambda r: r.get("wall_seconds") or 0.0), sum(r.get("status") == "error" for r in records))


@dataclass
class RunMetrics:
    """Everything a report shows about one run."""

    goals: list[Stats]
    overall: Stats
    achievement_rates: dict[str, float]  # percent, for each achievement the suite measures
    crafter_score: float | None
    score_basis: str  # "open-ended" (leaderboard definition) or "goal-conditioned"
    deaths: dict[str, int] = field(default_factory=dict)  # episodes that ended in death, per cause (no deaths: {})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(records: Iterable[Mapping[str, Any]], goals: Sequence[str]) -> RunMetrics:
    """Metrics of one run; ``goals`` is the suite's goal list in order (``["open"]`` when open-ended)."""
    records = list(records)
    per_goal = [Stats.of(g, [r for r in records if r["goal"] == g]) for g in goals]
    if list(goals) == ["open"]:
        n = len(records)
        rates = {a: 100 * sum(a in (r.get("achievements") or []) for r in records) / n if n else 0.0
                 for a in ACHIEVEMENTS}
        basis = "open-ended"
    else:
        rates = {a: 100 * s.success_rate for s in per_goal if (a := s.name) in ACHIEVEMENTS}
        basis = "goal-conditioned"
    score = crafter_score(rates) if records and set(rates) == set(ACHIEVEMENTS) else None
    return RunMetrics(per_goal, Stats.of("all", records), rates, score, basis, deaths_per_cause(records))


def deaths_per_cause(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many episodes each cause killed, in ``DEATH_CAUSES`` order; records from before causes were kept count
    nowhere (their ``death_cause`` is absent, like a survivor's None)."""
    causes = [r.get("death_cause") for r in records]
    return {c: n for c in DEATH_CAUSES if (n := causes.count(c))}
