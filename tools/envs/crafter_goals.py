"""Crafter's 22 achievements as natural-language goals, and matching of user text to them.

Matching reads Crafter's verbs and objects by their many names (mine/dig/chop → collect, wooden → wood,
workbench → table) and scores word overlap, so a new phrasing of a known goal matches exactly while a word
this world has no name for ("gold") is reported, never rounded to the nearest goal. Open requests naming a
set of goals ("make every wooden tool") are listed in :data:`OPEN_REQUESTS`.

A chat world persists across goals, so success is "the achievement count rose since the goal
started", not "the achievement is unlocked".
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.envs.crafter import ACHIEVEMENTS

#: At or above this score a request is understood as the goal (``GoalMatch.goal``); see UNSURE_THRESHOLD.
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

#: Between this score and :data:`MATCH_THRESHOLD` a request is unsure: the candidates are offered, none is run.
#: Below it the request is no goal of this world (refused with the reason). Both thresholds were calibrated on
#: evals/requests/dev.yaml (``python -m evals.bench_requests --calibrate``): from 0.72 up no dev not-goal runs.
UNSURE_THRESHOLD = 0.5

_FILLER = {"a", "an", "the", "some", "please", "me", "my", "i", "want", "to", "you", "can", "could", "go", "and",
           "of", "block", "blocks", "piece", "pieces", "bit", "few", "more", "one", "single", "up", "down", "us",
           "for", "now", "just", "quickly", "new", "yourself", "let", "lets", "s", "try", "need", "would", "like",
           "will", "should", "it", "ore", "crafting", "nearby", "from", "with", "your", "gonna", "kindly", "out",
           "yourselves", "that", "this", "there", "around", "own", "any", "we", "be", "able", "mind", "hey",
           "first", "next", "then", "finally", "also", "too", "again", "second", "lastly", "have", "do"}

#: Crafter's verbs and objects by their many names: the first word of each entry stands for the others.
_SYNONYM_GROUPS = (
    "collect get gather mine dig chop cut obtain acquire grab fetch harvest pick punch take cut collecting getting"
    " mining gathering chopping digging obtaining",
    "make craft build create forge construct produce fashion assemble making crafting building",
    "place put set plant_down placing putting",
    "defeat kill slay fight attack beat destroy hunt_down killing fighting defeating",
    "wood wooden woods log logs timber lumber tree trees",
    "table workbench bench tables",
    "pickaxe pick pickax pickaxes picks",
    "sword swords blade",
    "stone stones rock rocks cobblestone cobble",
    "diamond diamonds gem gems",
    "sapling saplings seedling seedlings",
    "zombie zombies", "skeleton skeletons", "cow cows", "furnace furnaces oven smelter",
    "plant plants", "coal coals", "water", "drink drinking", "eat eating", "sleep sleeping nap rest bed",
)
_SYNONYMS = {word: group.split()[0] for group in _SYNONYM_GROUPS for word in group.split()}
#: Multi-word names rewritten before words are read ("pick up" is collect, "pick-axe" one tool).
_REWRITES = ((r"\bpick[\s-]*axe", "pickaxe"), (r"\bpick(ed|ing)? up\b", "collect"), (r"\bset up\b", "place"),
             (r"\bput(ting)? down\b", "place"), (r"\bwork[\s-]*bench\b", "table"), (r"\bcrafting table\b", "table"),
             (r"\bplant (it|them|one)\b", "place plant"))


def canonical_words(text: str) -> list[str]:
    """Words of ``text`` in canonical form: lower case, no filler, synonyms replaced (mine → collect)."""
    text = text.lower().replace("_", " ")
    for pattern, replacement in _REWRITES:
        text = re.sub(pattern, replacement, text)
    words = re.findall(r"[a-z]+", text)
    return [_SYNONYMS.get(w, w) for w in words if w not in _FILLER]


def normalise(text: str) -> str:
    """Canonical words joined by spaces: what two phrasings of one goal have in common."""
    return " ".join(canonical_words(text))


#: Words that name a kind of thing, not a missing one: "make a stone tool" is unsure, not impossible.
_GENERIC = {"tool", "tools", "weapon", "something", "thing", "things", "item", "stuff", "every", "all"}
#: The words any goal name uses, canonical: a request word outside it is a thing this world lacks.
VOCABULARY: frozenset[str] = frozenset(w for g in GOALS.values() for n in (g.phrase, *g.aliases, g.achievement)
                       for w in canonical_words(n)) | _GENERIC


#: Each goal's names (phrase, aliases, achievement) as canonical words, read once.
_NAMES = {g.achievement: [canonical_words(n) for n in (g.phrase, *g.aliases, g.achievement)] for g in GOALS.values()}


def unknown_words(text: str) -> list[str]:
    """Request words this world has no name for (e.g. 'moon'), in order, without repeats."""
    seen: list[str] = []
    for word in canonical_words(text):
        if word not in VOCABULARY and word not in seen and not _close_word(word):
            seen.append(word)
    return seen


@functools.lru_cache(maxsize=4096)
def _close_word(word: str) -> str | None:
    """The vocabulary word a misspelt ``word`` means ('pikaxe' → 'pickaxe'), or None."""
    if len(word) < 4:
        return None
    close = difflib.get_close_matches(word, VOCABULARY, n=1, cutoff=0.8)
    return close[0] if close else None


def _words_score(query: list[str], name: list[str]) -> float:
    """F1 of the canonical word sets, a misspelt word counting as a match when it is close to one."""
    if not query or not name:
        return 0.0
    q, n = set(query), set(name)
    if q == n:
        return 1.0
    matched = len(q & n) + sum(0.9 for w in q - n if _close_word(w) in n - q)
    precision, recall = matched / len(q), matched / len(n)
    # F0.5: a request word the name lacks ("diamond" pickaxe) weighs more than a name word left unsaid
    return 0.0 if matched == 0 else 1.25 * precision * recall / (0.25 * precision + recall)


def match_goal(text: str) -> GoalMatch:
    """Map user text to a goal: same canonical words as a phrase/alias → 1.0, else the best word-set score;
    ``goal`` is set when that reaches :data:`MATCH_THRESHOLD`, ``candidates`` are the three best.

    Text over :data:`MAX_REQUEST_CHARS` matches nothing (no candidates), without being scored.
    """
    if len(text) > MAX_REQUEST_CHARS:
        return GoalMatch(None, 0.0, [])
    query = canonical_words(text)
    scored = [(goal, max(_words_score(query, name) for name in _NAMES[goal.achievement])) for goal in GOALS.values()]
    scored.sort(key=lambda gs: (-gs[1], gs[0].achievement))
    candidates = [(g, round(s, 3)) for g, s in scored[:3]]
    best, score = candidates[0]
    return GoalMatch(best if score >= MATCH_THRESHOLD else None, score, candidates)


#: Requests that name a set of goals rather than one ("make every wooden tool"), canonical words → goals in
#: the order the tech tree needs them.
OPEN_REQUESTS: dict[str, tuple[str, ...]] = {
    "every wood tool": ("make_wood_pickaxe", "make_wood_sword"),
    "every stone tool": ("make_stone_pickaxe", "make_stone_sword"),
    "every iron tool": ("make_iron_pickaxe", "make_iron_sword"),
    "every tool": ("make_wood_pickaxe", "make_wood_sword", "make_stone_pickaxe", "make_stone_sword",
                   "make_iron_pickaxe", "make_iron_sword"),
    "every pickaxe": ("make_wood_pickaxe", "make_stone_pickaxe", "make_iron_pickaxe"),
    "every sword": ("make_wood_sword", "make_stone_sword", "make_iron_sword"),
    "ready night": ("collect_wood", "place_table", "make_wood_sword", "wake_up"),
}
_EVERY = {"every", "all", "each", "both"}
_OPEN_WORDS = {"prepare": "ready", "tonight": "night", "tools": "tool"}


def open_request(text: str) -> tuple[Goal, ...]:
    """The goals an open request names ("make all the wooden tools", "get ready for the night"), or ()."""
    words = [w for w in canonical_words(text) if w not in {"make", "collect"}]
    key = " ".join("every" if w in _EVERY else _OPEN_WORDS.get(w, w) for w in words)
    if "tools" in words and not key.startswith("every"):  # "make wooden tools": the plural means all of them
        key = f"every {key}"
    return tuple(GOALS[a] for a in OPEN_REQUESTS.get(key, ()))
