"""Base-model fingerprints: which architecture a set of LoRA weights was trained on.

Both the planner's adapters (``agents.llm.adapters``) and HybridVLA's SmolLM2 backbone
(``vla.hybrid.backbone_llm``) save LoRA weights without the base model, so both record the base's
architecture fields and refuse weights whose base differs: peft alone would fail with a wall of
tensor-shape errors (or, for same-shape models, not fail at all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this at start-up; transformers loads only with a model
    from transformers import PreTrainedModel

# Config fields that must agree for LoRA weights to mean the same thing on another copy of a model.
ARCH_FIELDS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads")


def fingerprint(model: PreTrainedModel) -> dict[str, Any]:
    """Architecture fields of `model`'s config: equal fingerprints mean LoRA weights' shapes fit."""
    config = model.config
    return {name: getattr(config, name, None) for name in ARCH_FIELDS}


def fingerprint_mismatch(expected: dict[str, Any] | None, model: PreTrainedModel, *, what: str, trained_on: Any,
                         base: str) -> str | None:
    """One sentence naming both models if `model`'s fingerprint is not `expected`, else None.

    The caller raises it as its own error type (an adapter error, a checkpoint error).
    """
    found = fingerprint(model)
    if expected == found:
        return None
    diff = {k: ((expected or {}).get(k), v) for k, v in found.items() if (expected or {}).get(k) != v}
    return f"{what} was trained on base model {trained_on!r}, which differs from {base!r}: (its, this model's) {diff}"
