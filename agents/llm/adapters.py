"""LoRA adapter directories: what base model they belong to, and loading them onto one.

An adapter dir is what `peft` writes (`adapter_config.json` + `adapter_model.safetensors`) plus
`embodia_adapter.json`, which names the base model and its architecture (`tools.models.fingerprint`).
peft alone would fail on a mismatched base with a wall of tensor-shape errors, load an adapter whose
keys do not fit with only a warning (the adapter then silently not applied), and raise `RuntimeError`
or `SafetensorError` for another rank or truncated weights; every one of these ends here in one
`AdapterMismatchError` (a `ValueError`, exit 2 on the CLI) that names the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.llm import DEFAULT_SPEC
from tools.models.fingerprint import fingerprint, fingerprint_mismatch

if TYPE_CHECKING:  # the CLI imports this module at start-up; transformers loads only with a model
    from transformers import PreTrainedModel

ADAPTER_META = "embodia_adapter.json"
# The shipped planner adapter (see its README.md card): the default of `embodia run` / `chat` with the
# embedded model, because it beat the base model at choosing the agent's next subgoal.
DEFAULT_PLANNER_ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "planner-crafter"
DEFAULT_ADAPTER_SPECS = frozenset({DEFAULT_SPEC})
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class AdapterMismatchError(ValueError):
    """The adapter does not fit this model: another base, other keys or rank, damaged files, not an adapter dir."""


def resolve_adapter(spec: str, choice: str | None) -> str | None:
    """The adapter dir for `--adapter CHOICE`: 'default' = the shipped planner adapter for the embedded
    model (none for other models), 'none' = the base model, anything else = that dir."""
    if choice is None or choice.lower() == "none":
        return None
    if choice.lower() == "default":
        return str(DEFAULT_PLANNER_ADAPTER) if spec in DEFAULT_ADAPTER_SPECS else None
    return choice


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
    _read_json(Path(directory, ADAPTER_CONFIG))  # peft's own parse error would not name the file
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise AdapterMismatchError(f"{path} is not a JSON object; retrain the adapter with `embodia finetune`")
    return meta


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AdapterMismatchError(f"{path} is not readable JSON ({exc}); retrain the adapter with "
                                   f"`embodia finetune`") from exc


def check_adapter(directory: str | Path, model: PreTrainedModel, base: str) -> dict[str, Any]:
    """Raise `AdapterMismatchError` naming both models unless the adapter fits `model`; return its metadata."""
    meta = read_adapter_meta(directory)
    problem = fingerprint_mismatch(meta.get("fingerprint"), model, what=f"adapter {directory}",
                                   trained_on=meta.get("base_model"), base=base)
    if problem:
        raise AdapterMismatchError(problem)
    return meta


def load_adapter(model: PreTrainedModel, directory: str | Path, base: str, *, merge: bool = True) -> PreTrainedModel:
    """`model` with the adapter applied, after checking it belongs to `base`.

    Merged by default: inference then runs at the base model's speed, with no LoRA branches.
    """
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors import SafetensorError, safe_open

    check_adapter(directory, model, base)
    weights = Path(directory, ADAPTER_WEIGHTS)
    try:
        with safe_open(weights, framework="pt") as f:  # reads the header: a truncated file fails here
            saved = set(f.keys())
        with warnings.catch_warnings():  # peft's missing-keys warning: reported below as an error instead
            warnings.filterwarnings("ignore", message=".*missing adapter keys.*")
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, str(directory))
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:  # another rank: RuntimeError (shapes)
        raise AdapterMismatchError(f"cannot load the adapter weights {weights} onto {base!r}: "
                                   f"{str(exc).strip().splitlines()[0]}") from exc
    expected = set(get_peft_model_state_dict(peft_model, save_embedding_layers=False))  # no hub lookup
    if saved != expected:
        missing, unexpected = sorted(expected - saved), sorted(saved - expected)
        raise AdapterMismatchError(f"{weights} does not fit {base!r}: {len(missing)} missing keys (e.g. "
                                   f"{missing[:2]}) and {len(unexpected)} unexpected keys (e.g. {unexpected[:2]}); "
                                   f"it would silently not apply. Retrain it for this model with `embodia finetune`")
    return peft_model.merge_and_unload() if merge else peft_model
