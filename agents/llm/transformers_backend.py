"""Hugging Face transformers backend: the default, CPU-friendly planner LLM.

`score` is the planner's hot path (one call per decision), so it is built for latency:

* One forward pass per call. All options are packed after the prompt in a single batch-1 sequence
  with a custom 4D attention mask (each option sees the prompt and its own earlier tokens, never the
  other options) and per-option position ids. No KV cache is copied per option.
* The prompt's KV cache is kept between calls, and the next call reuses its longest common token
  prefix (planner prompts share a long system/rules header; only the state and history change).
* Logits are computed only at the positions that predict option tokens (the vocabulary projection is
  a fifth of this model's FLOPs per position).

Tokenisation at the prompt/option boundary: each option is scored by tokenising `prompt + option`
as one string and comparing with the tokenised prompt. The option's tokens are those after the
common token prefix, so a token that merges the prompt's trailing characters with the option's first
characters (e.g. prompt "is " + option "Paris" -> token " Paris") counts as an option token. This
scores exactly the token sequence the model would itself produce for that text.

Inputs are bounded by the model's context (`max_position_embeddings`) before anything is allocated:
the packed mask is quadratic in the tokens (55k tokens would take about 15 GB), and positions past
the context mean nothing to the model anyway. Too long a request raises `PromptTooLongError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from agents.llm.adapters import load_adapter
from agents.llm.base import (  # PromptTooLongError and common_prefix are imported from here too
    LLMUsage,
    Messages,
    PromptTooLongError,
    TokenizedLLM,
    common_prefix,
    cut_at_stop,
    shared_prefix,
)

__all__ = ["PromptTooLongError", "TransformersLLM", "common_prefix", "cpu_threads", "resolve_device"]


@dataclass
class _Packed:
    """Options laid out after a shared prefix: token ids, positions, and which logits score which token."""

    ids: list[int]  # option tokens, all options concatenated
    positions: list[int]  # absolute position of each token
    owner: list[int]  # option index of each token
    scored: list[tuple[int, int, int]]  # (option, packed index of the token, packed index predicting it; -1 = prefix)


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; anything else is passed through to torch."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cpu_threads(requested: int | None = None) -> int:
    """Torch CPU threads: `requested`, else $EMBODIA_LLM_THREADS, else the cores this process may use.

    Lower it when other processes share the cores: on a busy 2-core machine, 2 OpenMP threads made a
    forward pass ~5x slower than 1 thread (spinning threads wait on a descheduled peer).
    """
    return requested or int(os.environ.get("EMBODIA_LLM_THREADS", 0)) or len(os.sched_getaffinity(0))


class TransformersLLM(TokenizedLLM):
    """A causal LM loaded with `from_pretrained` (local dir or hub id), greedy decoding.

    Not thread-safe: the reusable prompt cache is per instance.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        name: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        adapter: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads(num_threads))
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(self.device)
        self.name = name or f"transformers:{model}"
        self.context: int = getattr(self.model.config, "max_position_embeddings", None) or 2048
        if adapter:  # a LoRA dir from `embodia finetune`, checked against this base model, merged in
            self.model = load_adapter(self.model, adapter, self.name)
        self.model.eval()
        self.usage = LLMUsage()
        self._prefix_ids: list[int] = []
        self._prefix_cache: DynamicCache | None = None

    def clear_prefix_cache(self) -> None:
        """Forget the cached prompt, so the next `score` runs its whole prompt (benchmarks, memory)."""
        self._prefix_ids, self._prefix_cache = [], None

    # ----------------------------------------------------------------------------------- prompts
    def render(self, prompt: str | Messages) -> str:
        """Prompt text as the model sees it: chat messages go through the chat template."""
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ---------------------------------------------------------------------------------- generate
    @torch.inference_mode()
    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 128,
        stop: list[str] | None = None,
        schema: dict | None = None,
    ) -> str:
        """Greedy reply. With a schema the reply is primed with "{" so the model starts a JSON object
        (this backend has no grammar-constrained decoding; the caller validates the reply)."""
        with self._track() as call:
            primer = "{" if schema is not None else ""
            ids = torch.tensor([self._encode(self.render(messages) + primer)], device=self.device)
            self._check_length(ids.shape[1] + max_tokens, f"the prompt plus max_tokens={max_tokens}")
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                stop_strings=stop or None,
                tokenizer=self.tokenizer if stop else None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new = out[0, ids.shape[1] :].tolist()
            call.prompt_tokens = ids.shape[1]
            call.completion_tokens = len(new)
            return cut_at_stop(primer + self.tokenizer.decode(new, skip_special_tokens=True), stop)

    # ------------------------------------------------------------------------------------- score
    @torch.inference_mode()
    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        with self._track() as call:
            prompt_ids, full, starts = self._option_tokens(prompt, options)
            # The packed sequence: the prompt once, then every option's tokens (the mask is its square).
            self._check_length(len(prompt_ids) + sum(len(f) - s for f, s in zip(full, starts, strict=True)),
                               f"the prompt plus its {len(options)} options")
            shared = shared_prefix(prompt_ids, starts)
            call.prompt_tokens = len(prompt_ids)
            call.completion_tokens = sum(len(f) - s for f, s in zip(full, starts, strict=True))
            return self._score_packed(prompt_ids[:shared], full, starts)

    def score_naive(self, prompt: str | Messages, options: list[str]) -> list[float]:
        """Reference implementation: one uncached forward per option. Used to test and benchmark `score`."""
        text = self.render(prompt)
        prompt_ids = self._encode(text)
        scores = []
        with torch.inference_mode():
            for o in options:
                ids = self._encode(text + o)
                start = common_prefix(prompt_ids, ids)
                logp = self.model(torch.tensor([ids], device=self.device)).logits[0].float().log_softmax(-1)
                scores.append(sum(logp[i - 1, ids[i]].item() for i in range(start, len(ids))))
        return scores

    def _score_packed(self, prefix: list[int], full: list[list[int]], starts: list[int]) -> list[float]:
        reuse = min(common_prefix(self._prefix_ids, prefix), len(prefix) - 1)  # >= 1 new token for its logits
        cache = self._prefix_cache if reuse > 0 else None
        if cache is not None:
            cache.crop(reuse - cache.get_seq_length())
        cache = cache if cache is not None else DynamicCache(config=self.model.config)

        new_prefix = prefix[reuse:]
        packed = _pack(len(prefix), full, starts)
        if not packed.scored:  # every option is empty
            return [0.0] * len(full)
        n_new, n_opt = len(new_prefix), len(packed.ids)
        ids = torch.tensor([new_prefix + packed.ids], device=self.device)
        positions = torch.tensor([list(range(reuse, len(prefix))) + packed.positions], device=self.device)
        mask = self._mask(reuse, n_new, packed.owner)
        # Logits only where they predict an option token: the last prefix token and option tokens.
        predictors = sorted({p for _, _, p in packed.scored})
        keep = torch.tensor([n_new - 1 if p < 0 else n_new + p for p in predictors], device=self.device)
        self._prefix_ids = []  # the cache is mid-update until the crop below
        out = self.model(
            input_ids=ids,
            position_ids=positions,
            attention_mask=mask,
            cache=cache,
            use_cache=True,
            logits_to_keep=keep,
        )
        cache.crop(-n_opt)
        self._prefix_ids, self._prefix_cache = prefix, cache

        logp = out.logits[0].float().log_softmax(-1)
        row = {p: i for i, p in enumerate(predictors)}
        scores = [0.0] * len(full)
        for opt, tok, pred in packed.scored:
            scores[opt] += logp[row[pred], packed.ids[tok]].item()
        return scores

    def _mask(self, n_cached: int, n_new: int, owner: list[int]) -> torch.Tensor:
        """Additive (1, 1, q, kv) mask: causal over the prompt; each option sees the prompt and itself."""
        n_opt = len(owner)
        allowed = torch.zeros(n_new + n_opt, n_cached + n_new + n_opt, dtype=torch.bool)
        allowed[:, :n_cached] = True
        allowed[:n_new, n_cached : n_cached + n_new] = torch.ones(n_new, n_new, dtype=torch.bool).tril()
        allowed[n_new:, n_cached : n_cached + n_new] = True
        own = torch.tensor(owner)
        same = (own[:, None] == own[None, :]).tril()
        allowed[n_new:, n_cached + n_new :] = same
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None].to(self.device)


def _pack(shared: int, full: list[list[int]], starts: list[int]) -> _Packed:
    """Concatenate every option's tokens after the shared prefix.

    Tokens between `shared` and an option's start re-encode the prompt's tail (the boundary merged
    differently for another option); they are fed to the model but not scored.
    """
    packed = _Packed([], [], [], [])
    for opt, (ids, start) in enumerate(zip(full, starts, strict=True)):
        for pos in range(shared, len(ids)):
            idx = len(packed.ids)
            packed.ids.append(ids[pos])
            packed.positions.append(pos)
            packed.owner.append(opt)
            if pos >= start:
                packed.scored.append((opt, idx, -1 if pos == shared else idx - 1))
    return packed
