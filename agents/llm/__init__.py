"""LLM backends behind one interface (`LLM`), chosen by a "BACKEND:MODEL" spec.

New backends (openai, vllm, llamacpp) register a factory in `BACKENDS`; the planner only ever calls
`make_llm(spec)` and the `LLM` methods, so adding one touches nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.llm.base import LLM, LLMUsage, Messages

# The planner every command uses unless told otherwise: the embedded model (see tools.models.smollm2).
DEFAULT_SPEC = "transformers:smollm2"

# MODEL names that mean "the embedded model" rather than a local dir or hub id.
EMBEDDED_ALIASES = frozenset({"smollm2", "smollm2-135m-instruct"})


def _make_transformers(model: str, *, device: str, dtype: str, adapter: str | None) -> LLM:
    from agents.llm.transformers_backend import TransformersLLM

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


__all__ = ["BACKENDS", "DEFAULT_SPEC", "LLM", "LLMUsage", "Messages", "make_llm"]
