"""The backend-neutral LLM interface the planner is written against.

Small local models are unreliable at free-form output, so the planner mostly *scores* enumerated
options (SayCan-style) and only sometimes *generates* (JSON against a schema). Every backend
implements both and keeps cumulative usage so budgets and reports work the same everywhere.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so callers can degrade instead of failing (the fallback for each is fixed).

    score     exact log-likelihoods of options; else `score` answers by constrained choice: the option
              the model picks gets 0.0, the others CHOICE_FLOOR (a vote, still a valid prior)
    schema    `generate(schema=...)` is constrained decoding; else the schema is a hint and the caller
              validates the reply (the planner does, with bounded retries)
    stop      stop strings are honoured by the engine; else the reply is cut after decoding
    images    image parts in messages reach the model; else passing one raises `CapabilityError`
    logprobs  the engine exposes token log-probabilities (score is then exact)
    """

    score: bool = True
    schema: bool = False
    stop: bool = True
    images: bool = False
    logprobs: bool = True

    def row(self) -> dict[str, bool]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The score given to options a choice-only backend did not pick: e^-20 ~ 2e-9, finite so priors stay valid.
CHOICE_FLOOR = -20.0


class CapabilityError(ValueError):
    """A request needs a capability the backend lacks (e.g. an image for a text-only model)."""


class BackendReplyError(RuntimeError):
    """The backend answered, but not with what was asked (empty, malformed, off the schema)."""


class ServerUnavailableError(ConnectionError):
    """A model server cannot be reached or refused the request; the message names the server."""


class PromptTooLongError(ValueError):
    """The prompt (plus options) does not fit the model's context; the message says by how much."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """`text` cut before the stop strings, for backends whose engine does not stop there itself."""
    for s in stop or []:
        text = text.split(s, 1)[0]
    return text


def shared_prefix(prompt_ids: Sequence[int], starts: Sequence[int]) -> int:
    """How many prompt tokens every option is scored after (up to the first option token); 0 is refused."""
    shared = min([len(prompt_ids), *starts])
    if shared == 0:
        raise ValueError("score() needs a non-empty prompt: the first option token must be conditioned on it")
    return shared


def text_content(message: dict) -> str:
    """The text of a message whose content is a string or a list of OpenAI-style parts.

    Text-only backends call this: an image part is refused (not dropped) so a caller that needs the
    image learns it from the error rather than from a silently worse answer.
    """
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        else:
            raise CapabilityError(f"this backend is text-only and cannot take a {part.get('type')!r} part; "
                                  f"use a backend whose capabilities include images")
    return "".join(texts)


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
    capabilities: Capabilities = Capabilities()

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


class TokenizedLLM(LLM):
    """A backend that tokenises locally and knows its context (transformers, llama.cpp).

    Such backends score options by the same boundary rule: an option's tokens are those of
    `prompt + option` after the common token prefix with the prompt's tokens.
    """

    context: int

    @abstractmethod
    def render(self, prompt: str | Messages) -> str:
        """Prompt text as the model sees it: chat messages go through the chat template."""

    @abstractmethod
    def _encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens added."""

    def _check_length(self, tokens: int, what: str) -> None:
        if tokens > self.context:
            raise PromptTooLongError(f"{what} is {tokens} tokens, more than {self.name}'s context of {self.context} "
                                     f"tokens; shorten the request")

    def _option_tokens(self, prompt: str | Messages,
                       options: list[str]) -> tuple[list[int], list[list[int]], list[int]]:
        """The prompt's tokens, each `prompt + option`'s tokens, and the index of each option's first token.

        Too long a prompt raises `PromptTooLongError` before the options are encoded.
        """
        text = self.render(prompt)
        prompt_ids = self._encode(text)
        self._check_length(len(prompt_ids), "the prompt")
        full = [self._encode(text + o) for o in options]
        return prompt_ids, full, [common_prefix(prompt_ids, f) for f in full]
