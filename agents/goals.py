"""From the user's words to what the world can do: one goal, an ordered list of goals, a question to answer,
options to choose from when unsure, or an honest "cannot do that here". Shared by ``run`` and ``chat``.

Each part of a request is matched by :func:`tools.envs.crafter_goals.match_goal` (Crafter's verbs and
objects by their many names). A confident match runs; an unsure one (between
:data:`~tools.envs.crafter_goals.UNSURE_THRESHOLD` and :data:`~tools.envs.crafter_goals.MATCH_THRESHOLD`)
asks back with the top options -- unless the planner LLM, scoring the env's goal phrases (so it cannot
invent one), picks the matcher's best reading too and lifts the blended score over the threshold: the
planner confirms, it never overrides (its own pick is worse than the keywords', issue 25). A request
naming things this world lacks is refused with the reason. Compound requests ("get wood and then place a
table", "X after Y") become ordered parts; a part this world cannot do is named and skipped. A request
over :data:`~tools.envs.crafter_goals.MAX_REQUEST_CHARS` is refused before any scoring, and a model that
fails while scoring is reported in the message (the matcher's reading stands), never hidden.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agents.llm.base import LLM
from prompts import render_messages
from tools.envs.crafter_goals import (
    GOALS,
    MATCH_THRESHOLD,
    MAX_REQUEST_CHARS,
    UNSURE_THRESHOLD,
    Goal,
    canonical_words,
    match_goal,
    open_request,
    unknown_words,
)

#: Weight of the LLM's probability against the matcher's score in the unsure band (calibrated on the dev set).
LLM_WEIGHT = 0.5
#: Kinds of understanding: run one goal, run several in order, ask back, refuse, answer a question.
KINDS = ("goal", "goals", "unsure", "refused", "question")
_VERBS = {"collect", "make", "place", "defeat", "eat", "drink", "sleep", "wake"}
_POLITE = re.compile(r"^(?:please\s+)?(?:can|could|would|will)\s+you\s+(?:please\s+)?", re.IGNORECASE)
#: A wh-word, or an auxiliary before its subject ("have you …?" asks, "have a drink" does not).
_QUESTION_START = re.compile(r"^(?:what|which|where|how|why|who|when|whose|tell me|show me|explain|describe)\b|"
                             r"^(?:do|did|does|are|is|have|has|was|were|am|can|should|could|would|will)\s+"
                             r"(?:you|i|we|it|they|there|my|your|this|that)\b", re.IGNORECASE)
#: "X after Y" / "X but first Y" / "X once you have Y": Y comes first.
_REVERSED = re.compile(r"^(?P<later>.+?)\s*,?\s*\b(?:but first|after you(?:'ve| have)?|after(?! that| this|wards)|"
                       r"once you(?:'ve| have)?)\s+(?P<first>.+)$", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:[;,.]\s*)?\b(?:and then|and after that|after that|afterwards|and finally|finally|"
                    r"then|and|before)\b\s*|\s*[;,]\s*|\.\s+", re.IGNORECASE)
_LEAD = re.compile(r"^(?:first(?:ly)?|to start|start by|begin by|,)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class GoalResolution:
    """What a request was understood as, and what to tell the user.

    ``goal`` is the (first) goal to pursue, None unless ``kind`` is goal/goals; ``parts`` every goal to pursue
    in order; ``options`` the top candidates when unsure; ``skipped`` the parts this world cannot do.
    """

    request: str
    goal: Goal | None
    closest: Goal | None
    confidence: float
    message: str
    model_error: str | None = None  # why the LLM could not rank the goals, when it failed
    kind: str = "goal"
    parts: tuple[Goal, ...] = ()
    options: tuple[Goal, ...] = ()
    skipped: tuple[str, ...] = ()


def request_too_long(request: str) -> str | None:
    """The message refusing an over-long request, or None when its length is fine."""
    if len(request) <= MAX_REQUEST_CHARS:
        return None
    return (f"That request is {len(request):,} characters long; a goal is at most {MAX_REQUEST_CHARS} "
            f"(say it in one sentence, e.g. 'make a stone pickaxe').")


def is_question(text: str) -> bool:
    """A question to answer, not a goal: "where is the nearest tree?" yes; "can you get some wood?" no."""
    text = text.strip()
    if _POLITE.match(text):
        return False
    return text.endswith("?") or bool(_QUESTION_START.match(text))


def split_request(text: str) -> list[str]:
    """The parts of a compound request in the order to do them ("X after Y" → [Y, X])."""
    text = _POLITE.sub("", text.strip()).strip(" .!?")
    reversed_order = _REVERSED.match(text)
    if reversed_order:
        return [*split_request(reversed_order["first"]), *split_request(reversed_order["later"])]
    parts = [_LEAD.sub("", p).strip(" .!?,") for p in _SPLIT.split(_LEAD.sub("", text))]
    return [p for p in parts if p]


def _plan(parts: tuple[Goal, ...]) -> str:
    """'goal: collect wood', or 'goals: 1) collect wood → 2) place a crafting table'."""
    if len(parts) == 1:
        return f"goal: {parts[0].phrase}"
    return "goals: " + " → ".join(f"{i}) {g.phrase}" for i, g in enumerate(parts, 1))


def _refusal(request: str, closest: Goal | None, model_error: str | None = None) -> str:
    if any(ch.isalpha() and not ch.isascii() for ch in request):  # "récupère du bois": its words are not read
        hint = " I read requests in English only (e.g. 'collect wood')."
    else:
        missing = unknown_words(request)
        hint = f" This world has no {', '.join(repr(w) for w in missing[:3])}." if missing else ""
    hint += f" The closest known goal is {closest.phrase!r}." if closest else ""
    if model_error is not None:
        hint += f" (The planner could not rank the goals -- {model_error}; the hint comes from keywords.)"
    return (f"I cannot do {request!r} here: it is not one of the {len(GOALS)} things this world can test "
            f"(Crafter's achievements, e.g. 'collect wood', 'make a stone pickaxe').{hint}")


def _llm_probabilities(llm: LLM, request: str, options: list[Goal]) -> list[float]:
    """The LLM's probability of each option (softmax of the options' log-likelihoods), in option order."""
    messages = render_messages("goal_match", request=request, goals=[g.phrase for g in options])
    scores = llm.score(messages, [g.phrase for g in options])
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]


def _resolve_one(request: str, llm: LLM | None) -> GoalResolution:
    """One part: a goal, an open set of goals, unsure options, or a refusal."""
    opened = open_request(request)
    if opened:
        return GoalResolution(request, opened[0], opened[0], 1.0, _plan(opened), kind="goals", parts=opened)
    match = match_goal(request)
    if match.goal is not None:
        return GoalResolution(request, match.goal, match.goal, match.confidence, f"goal: {match.goal.phrase}",
                              parts=(match.goal,))
    closest = match.candidates[0][0] if match.candidates else None
    if match.confidence < UNSURE_THRESHOLD or unknown_words(request):
        return GoalResolution(request, None, closest, match.confidence, _refusal(request, closest), kind="refused")
    scored = [(g, s) for g, s in match.candidates if s >= UNSURE_THRESHOLD]
    options = [g for g, _ in scored]
    model_error = None
    if llm is not None:  # the planner may confirm the matcher's best reading, never replace it
        try:
            goals = list(GOALS.values())
            probability = dict(zip((g.achievement for g in goals), _llm_probabilities(llm, request, goals),
                                   strict=True))
            blended = {g.achievement: (1 - LLM_WEIGHT) * s + LLM_WEIGHT * probability[g.achievement]
                       for g, s in scored}
            best, score = scored[0][0], blended[scored[0][0].achievement]
            if max(probability, key=probability.__getitem__) == best.achievement and score >= MATCH_THRESHOLD:
                return GoalResolution(request, best, best, round(score, 3), f"goal: {best.phrase} (planner agrees)",
                                      parts=(best,))
            options.sort(key=lambda g: -blended[g.achievement])
        except Exception as exc:  # the matcher's reading stands, and the user is told the model failed
            model_error = f"{type(exc).__name__}: {exc}"
    listed = "; ".join(f"{i}) {g.phrase}" for i, g in enumerate(options, 1))
    message = f"I am not sure what {request!r} means here. Did you mean: {listed}? Say the one you mean."
    if model_error is not None:
        message += f" (The planner could not rank the goals -- {model_error}.)"
    return GoalResolution(request, None, options[0], match.confidence, message, model_error, kind="unsure",
                          options=tuple(options))


def _with_verb(part: str, verb: str | None) -> str:
    """'coal' after 'get stone' means 'get coal': a part without a verb borrows the previous part's."""
    words = canonical_words(part)
    return f"{verb} {part}" if verb and words and not _VERBS & set(words) else part


def resolve_goal(request: str, llm: LLM | None = None) -> GoalResolution:
    """Understand a request as goal(s), unsure options, a refusal or (when it is one) a question."""
    too_long = request_too_long(request)
    if too_long is not None:
        return GoalResolution(request, None, None, 0.0, too_long, kind="refused")
    if is_question(request):
        return GoalResolution(request, None, None, 0.0, f"{request!r} is a question, not a goal: ask it in "
                              "'embodia chat', or say what to do (e.g. 'collect wood').", kind="question")
    whole = match_goal(request)
    pieces = split_request(request)
    if whole.confidence >= 1.0 or len(pieces) <= 1:  # "sleep and wake up" is one goal's name
        return _resolve_one(request, llm)
    resolved: list[GoalResolution] = []
    verb: str | None = None
    for piece in pieces:
        resolved.append(_resolve_one(_with_verb(piece, verb), llm))
        verb = next((w for w in canonical_words(resolved[-1].request) if w in _VERBS), verb)
    doable = [r for r in resolved if r.parts]
    if not doable:
        closest = whole.candidates[0][0] if whole.candidates else None
        return GoalResolution(request, None, closest, whole.confidence, _refusal(request, closest), kind="refused")
    unsure = next((r for r in resolved if r.kind == "unsure"), None)
    if unsure is not None:
        return GoalResolution(request, None, unsure.closest, unsure.confidence,
                              f"In {request!r}: {unsure.message}", unsure.model_error, kind="unsure",
                              options=unsure.options)
    parts = tuple(g for r in doable for g in r.parts)
    skipped = tuple(r.request for r in resolved if r.kind == "refused")
    message = _plan(parts)
    if skipped:
        message = (f"I cannot do {', '.join(repr(s) for s in skipped)} here (not one of this world's goals); "
                   f"doing the rest. {message}")
    return GoalResolution(request, parts[0], parts[0], min(r.confidence for r in doable), message,
                          next((r.model_error for r in resolved if r.model_error), None),
                          kind="goals" if len(parts) > 1 else "goal", parts=parts, skipped=skipped)
