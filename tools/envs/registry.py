"""One place that names every world: short names for the CLI, gymnasium ids, and a factory.

Each env is a ``gymnasium.Env`` with a dict observation (``image``, ``state``) and a ``describe()`` text
view (DESIGN §3). They register under gymnasium ids (``embodia/Crafter-v0`` …) so any gymnasium tool can
``gymnasium.make`` them, and ``make_env("babyai", level="goto-obj")`` builds one by short name. Imports are
lazy: Meta-World needs MuJoCo, BabyAI minigrid, MineDojo its own extra, and naming them must not load them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import gymnasium


@dataclass(frozen=True)
class EnvEntry:
    """A registered world: its gymnasium id, where its class lives, and what it needs installed."""

    name: str
    gym_id: str
    entry_point: str
    extra: str | None
    summary: str


ENVS: dict[str, EnvEntry] = {e.name: e for e in (
    EnvEntry("crafter", "embodia/Crafter-v0", "tools.envs.crafter:CrafterEnv", None,
             "Crafter: open-world survival, 22 achievements, 17 discrete actions"),
    EnvEntry("metaworld", "embodia/MetaWorld-v0", "tools.envs.metaworld:MetaWorldEnv", "metaworld",
             "Meta-World: a Sawyer arm, 4-dim continuous actions, language task instructions"),
    EnvEntry("babyai", "embodia/BabyAI-v0", "tools.envs.babyai:BabyAIEnv", "babyai",
             "BabyAI (minigrid): language instructions in grid rooms, 7 discrete actions, the BabyAI bot"),
    EnvEntry("minedojo", "embodia/MineDojo-v0", "tools.envs.minedojo:MineDojoEnv", "minedojo",
             "MineDojo: Minecraft programmatic tasks (optional; cannot launch on this machine)"),
)}


def _register() -> None:
    for entry in ENVS.values():
        if entry.gym_id not in gymnasium.envs.registry:
            gymnasium.register(id=entry.gym_id, entry_point=entry.entry_point, disable_env_checker=True)


def get_entry(name: str) -> EnvEntry:
    """The entry for a short name or gymnasium id.

    Raises:
        KeyError: naming the known envs (and the closest one to a typo).
    """
    key = name.strip().lower()
    for entry in ENVS.values():
        if key in (entry.name, entry.gym_id.lower()):
            return entry
    close = difflib.get_close_matches(key, list(ENVS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise KeyError(f"unknown env {name!r}; known: {', '.join(ENVS)}.{hint}")


def make_env(name: str, **kwargs: Any) -> gymnasium.Env:
    """Build a registered env by short name or id; a missing extra is named in the error.

    Raises:
        KeyError: an unknown env.
        ImportError: the env's optional extra is not installed (``pip install 'embodia[EXTRA]'``).
    """
    entry = get_entry(name)
    _register()
    try:
        return gymnasium.make(entry.gym_id, **kwargs).unwrapped
    except ModuleNotFoundError as exc:
        raise ImportError(f"env {entry.name!r} needs the {entry.extra!r} extra: pip install 'embodia[{entry.extra}]' "
                          f"({exc.name} is missing)") from exc


_register()
