"""LLM backends behind one interface (`LLM`), chosen by a "BACKEND:MODEL" spec.

New backends (openai, vllm, llamacpp) register a factory in `BACKENDS`; the planner only ever calls
`make_llm(spec)` and the `LLM` methods, so adding one touches nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from agents.llm.base import LLM, LLMUsage, Messages
from agents.llm.structured import StructuredResult, generate_json

DEFAULT_SPEC = "transformers:smollm2"

# MODEL names that mean "the embedded model" rather than a local dir or hub id.
EMBEDDED_ALIASES = frozenset({"smollm2", "smollm2-135m-instruct"})


def _make_transformers(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.transformers_backend import TransformersLLM

    if model in EMBEDDED_ALIASES:
        from agents.llm.smollm2 import embedded_model_dir

        path, name = embedded_model_dir(), f"transformers:{model}"
        return TransformersLLM(path, name=name, device=device, dtype=dtype, adapter=adapter)
    return TransformersLLM(model, device=device, dtype=dtype, adapter=adapter)


Factory = Callable[..., LLM]
BACKENDS: dict[str, Factory] = {"transformers": _make_transformers}


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


__all__ = ["BACKENDS", "DEFAULT_SPEC", "LLM", "LLMUsage", "Messages", "StructuredResult", "generate_json", "make_llm"]
