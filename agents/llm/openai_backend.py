"""OpenAI-compatible server backend: vLLM's api_server, llama.cpp's server, hosted APIs, via the `openai` client.

Spec: ``openai:MODEL@URL`` (URL is the API base, e.g. http://127.0.0.1:8000/v1; without ``@URL``,
$EMBODIA_OPENAI_BASE_URL or $OPENAI_BASE_URL). The key comes from $EMBODIA_OPENAI_API_KEY, else
$OPENAI_API_KEY, else a placeholder that local servers accept; it is never logged or put in an error.

Failures, by kind:
* at load, the server is probed (GET /models): unreachable -> `ServerUnavailableError` naming the URL,
  before any episode starts; MODEL not served -> `ValueError` listing the models it does serve.
* every call has a timeout; transient errors (connection, timeout, 429, 5xx) are retried a bounded
  number of times with a short backoff; anything else (4xx) fails at once.
* a reply that is empty, not JSON, or off the schema raises `BackendReplyError`; the planner's own
  bounded retry then lets the critic decide and records the failure (agents/prior.py).

Capabilities are found out at load, not assumed: `score` uses completions with ``echo`` +
``logprobs`` (exact log-likelihoods) when the server returns prompt log-probs *aligned* with their
tokens, checked on a counting probe (llama-cpp-python's server pairs each token with the distribution
that predicts the next one unless the model adds a BOS); otherwise `score` asks for a constrained
choice (one JSON ``{"choice": ...}`` reply with an enum schema) and the picked option gets 0.0, the
rest CHOICE_FLOOR. Echo scoring renders chat messages locally, so it needs the model's chat template
(MODEL is an embedded alias, a local folder or a cached hub id); without one, choice it is. Schemas go
as ``response_format`` json_schema (the OpenAI form) or, where the server refuses that, json_object
with a ``schema`` (llama.cpp's form). Image parts pass through untouched (the server decides).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace

from agents.llm.base import (
    CHOICE_FLOOR,
    LLM,
    BackendReplyError,
    Capabilities,
    LLMUsage,
    Messages,
    ServerUnavailableError,
    cut_at_stop,
)

log = logging.getLogger(__name__)
INSTALL_HINT = "install embodia[openai] (pip install 'openai>=1.40')"
KEY_VARS = ("EMBODIA_OPENAI_API_KEY", "OPENAI_API_KEY")
URL_VARS = ("EMBODIA_OPENAI_BASE_URL", "OPENAI_BASE_URL")
PROBE = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16"


class _FormatRefusedError(Exception):
    """The server rejected the response_format form used (it may accept the other one)."""


@dataclass(frozen=True)
class OpenAIConfig:
    """Transport settings: every request is bounded in time and in retries."""

    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    retries: int = 2  # transient errors only: connection, timeout, 429, 5xx
    backoff_s: float = 0.5


def parse_target(model: str) -> tuple[str, str]:
    """(model, base_url) from "MODEL@URL" or "MODEL" plus $EMBODIA_OPENAI_BASE_URL / $OPENAI_BASE_URL."""
    name, _, url = model.partition("@")
    url = url or next((os.environ[v] for v in URL_VARS if os.environ.get(v)), "")
    if not name or not url:
        raise ValueError(f"openai:{model}: give the server as openai:MODEL@URL, e.g. "
                         f"openai:smollm2@http://127.0.0.1:8000/v1 (or set {URL_VARS[0]})")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"openai:{model}: the server URL {url!r} must start with http:// or https://")
    return name, url.rstrip("/")


class OpenAILLM(LLM):
    """A model behind an OpenAI-compatible HTTP API; greedy (temperature 0)."""

    def __init__(self, model: str, base_url: str, *, config: OpenAIConfig | None = None,
                 template_source: str | None = None) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ImportError(f"the openai backend needs the openai client: {INSTALL_HINT}") from exc
        self._openai = openai
        self.config = config or OpenAIConfig()
        self.model, self.base_url = model, base_url
        self.name = f"openai:{model}@{base_url}"
        self.usage = LLMUsage()
        key = next((os.environ[v] for v in KEY_VARS if os.environ.get(v)), "not-needed")
        # the client's own Timeout: openai 3.6x moved from httpx to httpx2 and refuses the other one
        timeout = openai.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self._check_model()
        self._schema_form = "json_schema"  # switched to llama.cpp's json_object form if the server refuses it
        self._tokenizer = _chat_tokenizer(template_source or model)
        echo = self._tokenizer is not None and self._echo_aligned()
        self.capabilities = Capabilities(score=echo, schema=True, stop=True, images=True, logprobs=echo)

    # ---------------------------------------------------------------------------------- transport
    def _call(self, what: str, fn, **kwargs):
        """`fn(**kwargs)` with the bounded retry on transient errors; errors name the server, not the key."""
        o = self._openai
        transient = (o.APIConnectionError, o.RateLimitError, o.InternalServerError)
        for attempt in range(self.config.retries + 1):
            try:
                return fn(**kwargs)
            except (o.BadRequestError, o.UnprocessableEntityError, o.InternalServerError) as exc:
                if "response_format" in kwargs and "response_format" in str(exc):
                    raise _FormatRefusedError(str(exc)) from exc  # llama_cpp.server answers 500 to it
                if not isinstance(exc, transient) or attempt == self.config.retries:
                    if isinstance(exc, transient):
                        raise ServerUnavailableError(f"{what} at {self.base_url} failed after {attempt + 1} "
                                                     f"tries: {type(exc).__name__}: {exc}") from exc
                    raise
                time.sleep(self.config.backoff_s * 2**attempt)
            except transient as exc:
                if attempt == self.config.retries:
                    raise ServerUnavailableError(f"{what} at {self.base_url} failed after {attempt + 1} tries: "
                                                 f"{type(exc).__name__}: {exc}") from exc
                time.sleep(self.config.backoff_s * 2**attempt)
            except o.APIResponseValidationError as exc:
                raise BackendReplyError(f"{what} at {self.base_url}: the reply is not valid JSON: {exc}") from exc
            except ValueError as exc:  # a body that is not JSON at all
                raise BackendReplyError(f"{what} at {self.base_url}: unreadable reply: {exc}") from exc
        raise AssertionError("unreachable")

    def _check_model(self) -> None:
        try:
            page = self._call("listing models", self.client.models.list)
        except ServerUnavailableError as exc:
            raise ServerUnavailableError(f"cannot reach the model server {self.base_url} ({exc}); start it, or "
                                         f"fix the URL in openai:MODEL@URL") from exc
        except self._openai.APIStatusError as exc:
            raise ServerUnavailableError(f"the model server {self.base_url} refused GET /models: "
                                         f"HTTP {exc.status_code}") from exc
        served = [m.id for m in page.data]
        if self.model not in served:
            shown = ", ".join(served[:20]) + (f" … ({len(served) - 20} more)" if len(served) > 20 else "")
            raise ValueError(f"the server {self.base_url} does not serve model {self.model!r}; it serves: "
                             f"{shown or 'nothing'}")

    # ---------------------------------------------------------------------------------- generate
    def generate(self, messages: Messages, *, max_tokens: int = 128, stop: list[str] | None = None,
                 schema: dict | None = None) -> str:
        """Greedy chat reply; a schema becomes a structured-output request (enforced by the server)."""
        with self._track() as call:
            reply = self._chat(messages, max_tokens=max_tokens, stop=stop, schema=schema)
            usage = getattr(reply, "usage", None)
            call.prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
            call.completion_tokens = getattr(usage, "completion_tokens", 0) or 0
            text = reply.choices[0].message.content if reply.choices else None
            if text is None:
                raise BackendReplyError(f"{self.name} returned no choice")
            return cut_at_stop(text, stop)

    def _chat(self, messages: Messages, *, max_tokens: int, stop: list[str] | None, schema: dict | None):
        kwargs = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        if stop:
            kwargs["stop"] = stop
        if schema is None:
            return self._call("chat completion", self.client.chat.completions.create, **kwargs)
        for form in dict.fromkeys([self._schema_form, "json_schema", "json_object"]):
            fmt = ({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
                   if form == "json_schema" else {"type": "json_object", "schema": schema})
            try:
                reply = self._call("chat completion", self.client.chat.completions.create, response_format=fmt,
                                   **kwargs)
            except _FormatRefusedError:  # this server spells structured output the other way
                continue
            self._schema_form = form
            return reply
        raise BackendReplyError(f"{self.name} accepts neither json_schema nor json_object response formats")

    # ------------------------------------------------------------------------------------- score
    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        if self.capabilities.score:
            return self._score_echo(self.render(prompt), options)
        return self._score_choice(prompt, options)

    def render(self, prompt: str | Messages) -> str:
        if isinstance(prompt, str):
            return prompt
        if self._tokenizer is None:
            raise BackendReplyError(f"{self.name}: no chat template here to render messages locally")
        return self._tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def _echo_logprobs(self, text: str) -> tuple[list[int], list[float | None]]:
        """(character offset, log-prob) of each token of `text`, from a completions call with echo."""
        reply = self._call("completion (echo)", self.client.completions.create, model=self.model, prompt=text,
                           max_tokens=1, temperature=0.0, echo=True, logprobs=0)
        lp = reply.choices[0].logprobs if reply.choices else None
        if lp is None or not lp.token_logprobs or not lp.text_offset:
            raise BackendReplyError(f"{self.name} returned no prompt log-probs for an echo completion")
        return list(lp.text_offset), list(lp.token_logprobs)

    def _score_echo(self, text: str, options: list[str]) -> list[float]:
        """One echo request per option (the completions API scores one text per prompt)."""
        scores = []
        with self._track() as call:
            for option in options:
                offsets, logprobs = self._echo_logprobs(text + option)
                end = len(text + option)
                # the option's tokens: those ending past the prompt; the one generated token is after `end`
                picked = [lp for i, (off, lp) in enumerate(zip(offsets, logprobs, strict=False))
                          if off < end and (offsets[i + 1] if i + 1 < len(offsets) else end) > len(text)]
                if any(lp is None for lp in picked):
                    raise BackendReplyError(f"{self.name} returned null log-probs inside the option {option!r}")
                call.prompt_tokens += len(offsets) - len(picked)
                call.completion_tokens += len(picked)
                scores.append(float(sum(picked)))
        return scores

    def _echo_aligned(self) -> bool:
        """Whether echo log-probs belong to their own tokens: a counting sequence must be easy to predict.

        An off-by-one server scores each token under the distribution for the next one, which makes
        every number in "1, 2, 3, ..." unlikely; the aligned mean is near 0 for any instruct model.
        """
        try:
            _, logprobs = self._echo_logprobs(PROBE)
        except (BackendReplyError, ServerUnavailableError, self._openai.APIStatusError) as exc:
            log.info("%s: no echo log-probs (%s); score falls back to constrained choice", self.name, exc)
            return False
        tail = [lp for lp in logprobs[len(logprobs) // 2 : -1] if lp is not None]
        aligned = bool(tail) and sum(tail) / len(tail) > -2.0
        if not aligned:
            log.info("%s: echo log-probs are misaligned; score falls back to constrained choice", self.name)
        return aligned

    def _score_choice(self, prompt: str | Messages, options: list[str]) -> list[float]:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        schema = {"type": "object", "properties": {"choice": {"type": "string", "enum": options}},
                  "required": ["choice"]}
        longest = max((len(o) for o in options), default=1)
        reply = self.generate(messages, max_tokens=16 + longest, schema=schema)
        try:
            choice = json.loads(reply)["choice"]
            index = options.index(choice)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BackendReplyError(f"{self.name}: the choice reply {reply[:200]!r} names none of the options") from exc
        return [0.0 if i == index else CHOICE_FLOOR for i in range(len(options))]

    def without_echo(self) -> OpenAILLM:
        """This backend with echo scoring off (benchmarks compare both paths on one server)."""
        self.capabilities = replace(self.capabilities, score=False, logprobs=False)
        return self


def _chat_tokenizer(model: str):
    """A tokenizer carrying MODEL's chat template, when one is available offline; else None."""
    from agents.llm import EMBEDDED_ALIASES

    try:
        from transformers import AutoTokenizer

        if model in EMBEDDED_ALIASES:
            from tools.models.smollm2 import embedded_model_dir

            return AutoTokenizer.from_pretrained(embedded_model_dir())
        tok = AutoTokenizer.from_pretrained(os.path.expanduser(model), local_files_only=True)
        return tok if tok.chat_template else None
    except Exception as exc:  # no local template: score uses constrained choice
        log.info("no local chat template for %s (%s)", model, exc)
        return None
