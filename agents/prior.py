"""The LLM's prior over the options of one decision (SayCan-style ``score``), and when it is worth asking.

The prior is a tie-breaker on top of the critic: value = critic + ``llm_weight`` × P_LLM(option).
A backend failure or invalid scores never end the episode; they are retried, then reported.
"""

from __future__ import annotations

import math

from agents.llm.base import LLM
from agents.steps import Candidate


def llm_can_change(shortlist: list[Candidate], weight: float) -> bool:
    """Whether the LLM's term (at most ``weight``) could change the choice; if not, skip the call.

    Exact, not a heuristic: when the best critic value leads by more than the
    weight, no LLM probability can overturn it, so the answer is known already.
    """
    if len(shortlist) < 2:
        return False
    best, second = sorted((c.critic for c in shortlist), reverse=True)[:2]
    return best - second <= weight


def valid_scores(scores: object, n: int) -> bool:
    """Whether a backend's answer is ``n`` finite real numbers (anything else is malformed output)."""
    return (isinstance(scores, (list, tuple)) and len(scores) == n
            and all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores))


def _clip(text: str, limit: int = 300) -> str:
    """A backend's text cut for the log: a huge answer or error message must not flood memory."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def llm_prior(llm: LLM, messages: list[dict[str, str]], options: list[str],
              retries: int) -> tuple[list[float] | None, str | None]:
    """Log-probabilities the LLM assigns to each option (normalised over the options), or (None, error)."""
    error = None
    for _attempt in range(1 + retries):
        try:
            scores = llm.score(messages, options)
        except Exception as exc:  # a backend failure must not end the episode
            error = f"llm score failed: {type(exc).__name__}: {_clip(str(exc))}"
            continue
        if not valid_scores(scores, len(options)):
            error = f"llm returned invalid scores {_clip(repr(scores))} for {len(options)} options"
            continue
        top = max(scores)
        shifted = [s - top for s in scores]  # shift first: top + log(sum) loses the sum when |top| is huge
        log_total = math.log(sum(math.exp(s) for s in shifted))
        return [s - log_total for s in shifted], None
    return None, error


def apply_prior(shortlist: list[Candidate], logprobs: list[float], weight: float) -> None:
    """Record each option's log-probability and set its value to critic + ``weight`` × probability."""
    for candidate, logprob in zip(shortlist, logprobs, strict=True):
        candidate.llm_logprob = logprob
        candidate.value = candidate.critic + weight * math.exp(logprob)
