"""LoRA adapter directories: what base model they belong to, and loading them onto one.

An adapter dir is what `peft` writes (`adapter_config.json` + `adapter_model.safetensors`) plus
`embodia_adapter.json`, which names the base model and its architecture. peft alone would fail on a
mismatched base with a wall of tensor-shape errors (or, for same-shape models, not fail at all); the
fingerprint turns that into one sentence naming both models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start-up; transformers loads only with a model
    from transformers import PreTrainedModel

ADAPTER_META = "embodia_adapter.json"
# The shipped planner adapter (see its README.md card): the default of `embodia run` / `chat` with the
# embedded model, because it beat the base model at choosing the agent's next subgoal.
DEFAULT_PLANNER_ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "planner-crafter"
DEFAULT_ADAPTER_SPECS = frozenset({"transformers:smollm2"})
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Config fields that must agree for LoRA weights to mean the same thing on another copy of a model.
ARCH_FIELDS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads")


class AdapterMismatchError(ValueError):
    """The adapter was trained on another base model (or is not an adapter dir at all)."""


def resolve_adapter(spec: str, choice: str | None) -> str | None:
    """The adapter dir for `--adapter CHOICE`: 'default' = the shipped planner adapter for the embedded
    model (none for other models), 'none' = the base model, anything else = that dir."""
    if choice is None or choice.lower() == "none":
        return None
    if choice.lower() == "default":
        return str(DEFAULT_PLANNER_ADAPTER) if spec in DEFAULT_ADAPTER_SPECS else None
    return choice


def fingerprint(model: PreTrainedModel) -> dict[str, Any]:
    """Architecture fields of `model`'s config: equal fingerprints mean the adapter's shapes fit."""
    config = model.config
    return {name: getattr(config, name, None) for name in ARCH_FIELDS}


def write_adapter_meta(directory: str | Path, *, base: str, model: PreTrainedModel, **extra: Any) -> None:
    """Record the base model's name and fingerprint (and e.g. the prompt version) beside the adapter."""
    meta = {"base_model": base, "fingerprint": fingerprint(model), **extra}
    Path(directory, ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")


def read_adapter_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory, ADAPTER_META)
    if not Path(directory, ADAPTER_CONFIG).is_file():
        raise AdapterMismatchError(f"{directory} is not a LoRA adapter dir: {ADAPTER_CONFIG} is missing")
    if not path.is_file():
        raise AdapterMismatchError(f"{directory} has no {ADAPTER_META}: cannot tell which base model it was "
                                   f"trained on; retrain it with `embodia finetune`")
    return json.loads(path.read_text())


def check_adapter(directory: str | Path, model: PreTrainedModel, base: str) -> dict[str, Any]:
    """Raise `AdapterMismatchError` naming both models unless the adapter fits `model`; return its metadata."""
    meta = read_adapter_meta(directory)
    check_fingerprint(meta.get("fingerprint"), model, what=f"adapter {directory}", trained_on=meta.get("base_model"),
                      base=base)
    return meta


def check_fingerprint(expected: dict[str, Any] | None, model: PreTrainedModel, *, what: str, trained_on: Any,
                      base: str) -> None:
    """Raise `AdapterMismatchError` naming both models unless `model`'s fingerprint is `expected`."""
    found = fingerprint(model)
    if expected != found:
        diff = {k: ((expected or {}).get(k), v) for k, v in found.items() if (expected or {}).get(k) != v}
        raise AdapterMismatchError(f"{what} was trained on base model {trained_on!r}, which differs from {base!r}: "
                                   f"(its, this model's) {diff}")


def load_adapter(model: PreTrainedModel, directory: str | Path, base: str, *, merge: bool = True) -> PreTrainedModel:
    """`model` with the adapter applied, after checking it belongs to `base`.

    Merged by default: inference then runs at the base model's speed, with no LoRA branches.
    """
    from peft import PeftModel

    check_adapter(directory, model, base)
    peft_model = PeftModel.from_pretrained(model, str(directory))
    return peft_model.merge_and_unload() if merge else peft_model
