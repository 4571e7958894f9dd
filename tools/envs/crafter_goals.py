"""Crafter's 22 achievements as natural-language goals, and matching of user text to them.

A chat world persists across goals, so success is "the achievement count rose since the goal
started", not "the achievement is unlocked".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.envs.crafter import ACHIEVEMENTS

#: Below this fuzzy score a text matches no goal (``GoalMatch.goal`` is None).
MATCH_THRESHOLD = 0.72
#: The longest request read as a goal: a goal is a sentence, and fuzzy matching (and an LLM scoring the
#: request) grows with its length -- a 100 kB "goal" took minutes. Longer text is refused, never cut.
MAX_REQUEST_CHARS = 500


@dataclass(frozen=True)
class Goal:
    achievement: str
    phrase: str
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def is_achieved(self, start_counts: Mapping[str, int], info_or_counts: Mapping[str, Any]) -> bool:
        """True when the achievement count rose above ``start_counts`` (accepts an env info dict)."""
        counts = info_or_counts.get("achievements", info_or_counts)
        return int(counts.get(self.achievement, 0)) > int(start_counts.get(self.achievement, 0))


@dataclass(frozen=True)
class GoalMatch:
    goal: Goal | None
    confidence: float
    candidates: list[tuple[Goal, float]]


_PHRASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "collect_coal": ("collect coal", ("get coal", "mine coal", "find coal")),
    "collect_diamond": ("collect a diamond", ("get diamonds", "collect diamonds", "mine diamond", "find a diamond")),
    "collect_drink": ("drink water", ("drink", "get a drink", "collect water", "quench thirst")),
    "collect_iron": ("collect iron", ("get iron", "mine iron", "find iron")),
    "collect_sapling": ("collect a sapling", ("get a sapling", "collect saplings", "gather sapling")),
    "collect_stone": ("collect stone", ("get stone", "get some stone", "mine stone", "gather stone")),
    "collect_wood": ("collect wood", ("get wood", "get some wood", "chop a tree", "chop wood", "gather wood")),
    "defeat_skeleton": ("defeat a skeleton", ("kill a skeleton", "fight a skeleton", "kill skeletons")),
    "defeat_zombie": ("defeat a zombie", ("kill a zombie", "fight a zombie", "kill zombies")),
    "eat_cow": ("eat a cow", ("eat cow", "eat beef", "hunt a cow", "kill a cow", "eat meat")),
    "eat_plant": ("eat a plant", ("eat plant", "eat a ripe plant", "harvest a plant", "eat fruit")),
    "make_iron_pickaxe": ("make an iron pickaxe", ("craft an iron pickaxe", "build an iron pickaxe")),
    "make_iron_sword": ("make an iron sword", ("craft an iron sword", "build an iron sword")),
    "make_stone_pickaxe": ("make a stone pickaxe", ("craft a stone pickaxe", "build a stone pickaxe")),
    "make_stone_sword": ("make a stone sword", ("craft a stone sword", "build a stone sword")),
    "make_wood_pickaxe": (
        "make a wood pickaxe",
        ("make a wooden pickaxe", "craft a wooden pickaxe", "craft a pickaxe", "make a pickaxe", "wooden pickaxe"),
    ),
    "make_wood_sword": ("make a wood sword", ("make a wooden sword", "craft a wooden sword", "craft a sword")),
    "place_furnace": ("place a furnace", ("build a furnace", "make a furnace", "craft a furnace")),
    "place_plant": ("place a plant", ("plant a sapling", "plant a tree", "place sapling", "grow a plant")),
    "place_stone": ("place stone", ("place a stone", "put down stone", "build with stone")),
    "place_table": (
        "place a crafting table",
        ("place a table", "build a table", "make a table", "craft a table", "make a crafting table"),
    ),
    "wake_up": ("sleep and wake up", ("sleep", "go to sleep", "rest", "take a nap", "wake up")),
}
assert set(_PHRASES) == set(ACHIEVEMENTS), "every crafter achievement needs a goal phrase"

GOALS: dict[str, Goal] = {a: Goal(a, phrase, aliases) for a, (phrase, aliases) in _PHRASES.items()}

_FILLER = {"a", "an", "the", "some", "please", "me", "my", "i", "want", "to", "you", "can", "could", "go", "and"}


def normalise(text: str) -> str:
    """Lower-case words without punctuation, articles or politeness."""
    words = re.findall(r"[a-z]+", text.lower().replace("_", " "))
    return " ".join(w for w in words if w not in _FILLER)


def _score(query: str, phrase: str) -> float:
    a, b = normalise(query), normalise(phrase)
    if not a or not b:
        return 0.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    qa, qb = set(a.split()), set(b.split())
    overlap = len(qa & qb) / len(qa | qb)
    return max(ratio, overlap)


def match_goal(text: str) -> GoalMatch:
    """Map user text to a goal: exact phrase/alias → 1.0, else the best fuzzy score above the threshold.

    Text over :data:`MAX_REQUEST_CHARS` matches nothing (no candidates), without being scored.
    """
    if len(text) > MAX_REQUEST_CHARS:
        return GoalMatch(None, 0.0, [])
    query = normalise(text)
    scored: list[tuple[Goal, float]] = []
    for goal in GOALS.values():
        names = (goal.phrase, *goal.aliases, goal.achievement)
        if query in {normalise(n) for n in names}:
            return GoalMatch(goal, 1.0, [(goal, 1.0)])
        scored.append((goal, max(_score(text, n) for n in names)))
    scored.sort(key=lambda gs: (-gs[1], gs[0].achievement))
    candidates = scored[:3]
    best, score = candidates[0]
    return GoalMatch(best if score >= MATCH_THRESHOLD else None, round(score, 3), candidates)
