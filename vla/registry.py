"""The policy registry: every VLA family by name, so ``--skills`` and ``embodia train vla --policy`` take any.

A family registers its name, its policy class (as ``"module:Class"``, imported only when used: naming
or checking a policy loads no model code) and its shipped checkpoint, if it has one::

    register("hybrid", "vla.hybrid:HybridVLAPolicy", checkpoint=CHECKPOINTS / "hybrid-crafter")
register("rth", "vla.rth:RTHPolicy", checkpoint=CHECKPOINTS / "rth-crafter")

Every checkpoint's ``config.json`` names its family (``"policy_type"``, written by
:meth:`vla.base.Policy.save_pretrained`), so :func:`load_policy` can open any checkpoint folder
without being told what it holds. ``"learned"`` is the default learned policy (today's HybridVLA
on Crafter). Every way a reference can be wrong (an unknown name, a missing folder, a config.json
that names no or an unknown family, a corrupt or mismatched checkpoint) raises one
:class:`~vla.base.CheckpointError` naming the folder or file.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vla.base import CONFIG_FILE, POLICY_TYPE_KEY, CheckpointError

if TYPE_CHECKING:
    from vla.base import Policy, PolicyConfig

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
#: The name ``--skills learned`` stands for: the default learned policy.
LEARNED = "learned"


@dataclass(frozen=True)
class PolicyEntry:
    """One registered family: its name, where its class lives, and its shipped checkpoint (None: none ships)."""

    name: str
    target: str  # "module:Class"
    checkpoint: Path | None = None

    def policy_class(self) -> type[Policy]:
        module, _, attribute = self.target.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        if cls.name != self.name:
            raise TypeError(f"{self.target} is registered as {self.name!r} but its name is {cls.name!r}")
        return cls

    def config_class(self) -> type[PolicyConfig]:
        return self.policy_class().config_class


_REGISTRY: dict[str, PolicyEntry] = {}


def register(name: str, target: str, *, checkpoint: Path | None = None) -> PolicyEntry:
    """Add a family; its name must be new and must not shadow ``"learned"`` or ``"expert"``."""
    if name in _REGISTRY or name in (LEARNED, "expert"):
        raise ValueError(f"policy name {name!r} is taken")
    _REGISTRY[name] = entry = PolicyEntry(name, target, checkpoint)
    return entry


# --- the families ------------------------------------------------------------------------
register("hybrid", "vla.hybrid:HybridVLAPolicy", checkpoint=CHECKPOINTS / "hybrid-crafter")
register("rth", "vla.rth:RTHPolicy", checkpoint=CHECKPOINTS / "rth-crafter")
register("univla", "vla.univla:UniVLAPolicy", checkpoint=CHECKPOINTS / "univla-crafter")
#: The policy ``learned`` means.
DEFAULT_POLICY = "hybrid"


def policy_names() -> list[str]:
    """Registered family names, in registration order."""
    return list(_REGISTRY)


def entry(name: str) -> PolicyEntry:
    """The registered family ``name`` (``learned`` = the default policy)."""
    name = DEFAULT_POLICY if name == LEARNED else name
    if name not in _REGISTRY:
        raise CheckpointError(f"unknown policy {name!r}; registered: {', '.join(_REGISTRY)} (or {LEARNED!r}, "
                              f"or a checkpoint folder)")
    return _REGISTRY[name]


def entry_for_config(config: PolicyConfig) -> PolicyEntry:
    """The family whose config class ``config`` is (exactly: a subclass may be another family's)."""
    for candidate in _REGISTRY.values():
        if candidate.config_class() is type(config):
            return candidate
    raise CheckpointError(f"no registered policy takes a {type(config).__name__}; registered: {', '.join(_REGISTRY)}")


def new_policy(config: PolicyConfig) -> Policy:
    """A fresh (untrained) policy of the family whose config ``config`` is (what a trainer builds)."""
    return entry_for_config(config).policy_class()(config)


def is_policy_reference(reference: str) -> bool:
    """Cheap check (no model code, no file read): a registered name, ``learned``, or an existing folder."""
    return reference == LEARNED or reference in _REGISTRY or Path(reference).expanduser().is_dir()


def checkpoint_of(reference: str | Path) -> Path:
    """The checkpoint folder ``reference`` stands for: a registered name's shipped one, or the folder itself."""
    text = str(reference)
    if text == LEARNED or text in _REGISTRY:
        found = entry(text)
        if found.checkpoint is None:
            raise CheckpointError(f"policy {found.name!r} ships no checkpoint; train one with `embodia train vla "
                                  f"--policy {found.name}` and pass its folder")
        return found.checkpoint
    folder = Path(reference).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CheckpointError(f"{folder} {what}: a policy is a registered name ({', '.join(_REGISTRY)}), "
                              f"{LEARNED!r}, or a checkpoint folder with {CONFIG_FILE}")
    return folder


def policy_type(folder: Path) -> str:
    """The family a checkpoint folder's ``config.json`` names."""
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: missing; {folder} is not a policy checkpoint folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated JSON ({exc})") from exc
    kind = config.get(POLICY_TYPE_KEY) if isinstance(config, dict) else None
    if kind not in _REGISTRY:
        said = f"names policy type {kind!r}" if kind is not None else f"has no {POLICY_TYPE_KEY!r}"
        raise CheckpointError(f"{path} {said}; registered policy types: {', '.join(_REGISTRY)}")
    return kind


def load_policy(reference: str | Path = LEARNED) -> Policy:
    """A trained policy from a registered name (its shipped checkpoint), ``learned``, or a checkpoint folder."""
    folder = checkpoint_of(reference)
    return entry(policy_type(folder)).policy_class().from_pretrained(folder)
