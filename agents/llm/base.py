"""The backend-neutral LLM interface the planner is written against.

Small local models are unreliable at free-form output, so the planner mostly *scores* enumerated
options (SayCan-style) and only sometimes *generates* (JSON against a schema). Every backend
implements both and keeps cumulative usage so budgets and reports work the same everywhere.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

Messages = list[dict[str, str]]


@dataclass
class LLMUsage:
    """Cumulative cost of an LLM; subtract two snapshots to get the cost of one step."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def copy(self) -> LLMUsage:
        return LLMUsage(self.calls, self.prompt_tokens, self.completion_tokens, self.seconds)


class LLM(ABC):
    """A language model that can generate chat replies and score candidate continuations."""

    name: str
    usage: LLMUsage

    @abstractmethod
    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 128,
        stop: list[str] | None = None,
        schema: dict | None = None,
    ) -> str:
        """Greedy chat reply, cut before the first stop string.

        `schema` asks for a JSON object; backends with constrained decoding enforce it, others use it
        as a hint (the caller validates the reply).
        """

    @abstractmethod
    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        """Total log-likelihood of each option as the continuation of `prompt`, in option order.

        A string prompt is used verbatim; chat messages are rendered with the chat template and the
        generation prompt, so options are scored as the start of the assistant's reply.
        """

    @contextmanager
    def _track(self) -> Iterator[LLMUsage]:
        """Count one call and its wall time; the body fills in token counts on the yielded record."""
        call = LLMUsage(calls=1)
        start = time.perf_counter()
        try:
            yield call
        finally:
            call.seconds = time.perf_counter() - start
            self.usage = self.usage + call
