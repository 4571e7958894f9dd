"""LLM backends behind one interface (`LLM`), chosen by a "BACKEND:MODEL" spec.

    transformers:smollm2 | DIR | HUB_ID     in-process torch (default; the embedded model)
    llamacpp:smollm2 | FILE.gguf            in-process llama.cpp, grammar-constrained (embodia[llamacpp])
    openai:MODEL@URL                        any OpenAI-compatible server (embodia[openai])
    vllm:DIR                                offline vLLM engine, in its own environment (embodia[vllm])

Each backend registers a factory in `BACKENDS` and declares its `capabilities` (see
`CAPABILITIES`); the planner only ever calls `make_llm(spec)` and the `LLM` methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.llm.base import LLM, Capabilities, LLMUsage, Messages

# The planner every command uses unless told otherwise: the embedded model (see tools.models.smollm2).
DEFAULT_SPEC = "transformers:smollm2"

# MODEL names that mean "the embedded model" rather than a local dir or hub id.
EMBEDDED_ALIASES = frozenset({"smollm2", "smollm2-135m-instruct"})


def _make_transformers(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.transformers_backend import TransformersLLM

    if model == "embodia-vlm" or (Path(model).expanduser() / "vlm.json").is_file():  # the VLM built here
        from agents.llm.vlm_backend import VLMBackend

        return VLMBackend(model, device=device)
    if model in EMBEDDED_ALIASES:
        from tools.models.smollm2 import embedded_model_dir

        path, name = embedded_model_dir(), f"transformers:{model}"
        return TransformersLLM(path, name=name, device=device, dtype=dtype, adapter=adapter)
    if _looks_like_path(model) and not Path(model).expanduser().exists():  # else transformers talks of hub ids
        raise FileNotFoundError(f"the model path {model} does not exist: give an existing model folder, a hub id, "
                                f"or one of {', '.join(sorted(EMBEDDED_ALIASES))} for the embedded model")
    return TransformersLLM(str(Path(model).expanduser()) if _looks_like_path(model) else model, device=device,
                           dtype=dtype, adapter=adapter)


def _looks_like_path(model: str) -> bool:
    """A local path rather than a hub id ("org/name"): absolute, home- or dot-relative, or existing."""
    return model.startswith(("/", "~", "./", "../")) or Path(model).expanduser().exists()


def _make_llamacpp(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.llamacpp_backend import LlamaCppLLM, resolve_gguf

    if adapter:
        raise ValueError("--adapter needs the transformers backend (a LoRA is merged into torch weights); "
                         "drop --adapter or use --llm transformers:…")
    path, name = resolve_gguf(model)
    return LlamaCppLLM(path, name=name)


def _make_openai(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.openai_backend import OpenAILLM, parse_target

    if adapter:
        raise ValueError("--adapter cannot reach a model on a server; load the adapter into the server instead")
    name, url = parse_target(model)
    return OpenAILLM(name, url)


def _make_vllm(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.vllm_backend import VllmLLM

    if adapter:
        raise ValueError("--adapter needs the transformers backend; merge the LoRA into DIR for vllm")
    if _looks_like_path(model) and not Path(model).expanduser().exists():
        raise FileNotFoundError(f"the model path {model} does not exist: give an existing model folder")
    return VllmLLM(str(Path(model).expanduser()) if _looks_like_path(model) else model, dtype=dtype)


Factory = Callable[..., LLM]
BACKENDS: dict[str, Factory] = {"transformers": _make_transformers, "llamacpp": _make_llamacpp,
                                "openai": _make_openai, "vllm": _make_vllm}

# What each backend can do, and the fallback where it cannot (agents/llm/base.py: Capabilities).
# openai's row is the best case: score/logprobs are probed at load (echo log-probs, else constrained choice).
CAPABILITIES: dict[str, Capabilities] = {
    "transformers": Capabilities(score=True, schema=False, stop=True, images=False, logprobs=True),
    "llamacpp": Capabilities(score=True, schema=True, stop=True, images=False, logprobs=True),
    "openai": Capabilities(score=True, schema=True, stop=True, images=True, logprobs=True),
    "vllm": Capabilities(score=True, schema=True, stop=True, images=False, logprobs=True),
}


def make_llm(
    spec: str = DEFAULT_SPEC, *, device: str = "cpu", dtype: str = "float32", adapter: str | None = None
) -> LLM:
    """Build an LLM from "BACKEND:MODEL", e.g. "transformers:smollm2" or "transformers:/path/to/ckpt"."""
    backend, sep, model = spec.partition(":")
    if backend not in BACKENDS:
        raise ValueError(f"Unknown LLM backend {backend!r} in {spec!r}; valid backends: {', '.join(sorted(BACKENDS))}")
    if not sep or not model:
        raise ValueError(f"LLM spec {spec!r} must look like 'BACKEND:MODEL', e.g. {DEFAULT_SPEC!r}")
    return BACKENDS[backend](model, device=device, dtype=dtype, adapter=adapter)


__all__ = ["BACKENDS", "CAPABILITIES", "DEFAULT_SPEC", "LLM", "Capabilities", "LLMUsage", "Messages", "make_llm"]
