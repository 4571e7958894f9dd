"""MineDojo behind embodia's env interface, written against MineDojo's documented API (optional extra).

MineDojo cannot start on this machine: its first ``reset`` builds Minecraft (Forge 1.11.2) with gradle, which
downloads from hosts unreachable here, and wants Java 8 (``../shared/ENVS.md``). So this module keeps what can
be checked without the game apart from the game itself:

- **Tasks as goals** (:func:`parse_task`): a programmatic task id ("harvest_1_log", "combat_zombie_forest_…",
  "techtree_from_barehand_to_wooden_sword") becomes a :class:`MineDojoGoal` — category, target, quantity, the
  prompt — with a success test on the inventory (harvest, techtree) or on the task's own verdict (combat).
  With MineDojo installed, prompts come from ``minedojo.tasks.ALL_PROGRAMMATIC_TASK_INSTRUCTIONS``.
- **Observation conversion** (:func:`convert_observation`): MineDojo's dict (``rgb`` channels-first, inventory
  names/quantities, ``life_stats``, ``location_stats``, ``nearby_tools``) → embodia's ``{"image", "state"}``
  (64×64 HWC frame; life, food, oxygen and the counts of :data:`TRACKED_ITEMS`).
- **Action conversion** (:func:`encode_action`): named actions ("forward", "attack", "craft planks", "turn
  left", "look down", "place crafting table") → the 8-dimensional MultiDiscrete vector of MineDojo's
  ``NNActionSpaceWrapper`` (movement, strafe, jump, camera pitch/yaw bins, functional action, craft argument,
  inventory slot).
- **describe** on an observation (:func:`describe_observation`): the planner's text view.

:class:`MineDojoEnv` wraps ``minedojo.make(task_id=…, image_size=…)`` with these pieces; it raises
:class:`MineDojoUnavailableError` with the install recipe where MineDojo is absent or cannot launch.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np

INSTALL_HINT = (
    "MineDojo is an optional extra: pip install 'setuptools==65.5.0' 'wheel==0.38.4' && "
    "pip install --no-build-isolation gym==0.21.0 'numpy<2' && pip install minedojo; it needs Java 8 and xvfb, "
    "and its first launch builds Minecraft with gradle (needs internet access to Minecraft's hosts)"
)
FRAME_SIZE = 64
#: Inventory items whose counts ``state`` carries (the first steps of Minecraft's tech tree).
TRACKED_ITEMS: tuple[str, ...] = (
    "log", "planks", "stick", "crafting table", "wooden pickaxe", "wooden sword", "cobblestone", "stone pickaxe",
    "furnace", "coal", "iron ore", "iron ingot", "iron pickaxe", "diamond",
)
FUNCTIONAL = ("no_op", "use", "drop", "attack", "craft", "equip", "place", "destroy")
CAMERA_INTERVAL = 15  # degrees per camera bin, NNActionSpaceWrapper's default
CAMERA_BINS = 360 // CAMERA_INTERVAL + 1  # 25 bins, the middle one (12) is "no turn"
N_INVENTORY_SLOTS = 36


class MineDojoUnavailableError(RuntimeError):
    """MineDojo is not installed or cannot launch Minecraft here."""


def minedojo_available() -> bool:
    return importlib.util.find_spec("minedojo") is not None


# --- tasks as goals ---
@dataclass(frozen=True)
class MineDojoGoal:
    """One programmatic task as an embodia goal."""

    task_id: str
    category: str  # harvest | combat | techtree | survival
    target: str  # the item or mob ("log", "zombie", "wooden sword")
    quantity: int
    prompt: str

    def is_achieved(self, inventory: Mapping[str, float], task_success: bool = False) -> bool:
        """Harvest and techtree: the target is held in quantity; combat and survival: the task says so."""
        if self.category in ("harvest", "techtree"):
            return task_success or inventory.get(self.target, 0) >= self.quantity
        return task_success


_HARVEST = re.compile(r"^harvest_(?:(\d+)_)?([a-z_]+?)(?:_with_.*|_(?:plains|forest|extreme_hills|desert|jungle|"
                      r"taiga|swampland|savanna|mesa|ocean|ice_plains|beach|mushroom_island|river|nether|end))*$")
_TECHTREE = re.compile(r"^techtree_from_([a-z]+)_to_([a-z_]+)$")
_COMBAT = re.compile(r"^combat_([a-z]+(?:_[a-z]+)??)_(?:end|nether|forest|plains|extreme_hills|desert|jungle|taiga|"
                     r"swampland|savanna|mesa|ice_plains|beach|mushroom_island|river)_")


def parse_task(task_id: str, prompt: str | None = None) -> MineDojoGoal:
    """A programmatic task id → a goal (its prompt from MineDojo when installed, else built from the id).

    Raises:
        ValueError: the id is not one of MineDojo's programmatic task forms.
    """
    key = task_id.strip().lower()
    if match := _TECHTREE.match(key):
        category, target, quantity = "techtree", match.group(2).replace("_", " "), 1
        default = f"obtain a {target} starting from {match.group(1).replace('barehand', 'bare hands')}"
    elif match := _COMBAT.match(key):
        category, target, quantity = "combat", match.group(1).replace("_", " "), 1
        default = f"combat a {target}"
    elif key.startswith("harvest_") and (match := _HARVEST.match(key)):
        category, target, quantity = "harvest", match.group(2).replace("_", " "), int(match.group(1) or 1)
        default = f"obtain {quantity} {target}"
    elif key == "survival" or key.startswith("survival_"):
        category, target, quantity, default = "survival", "", 1, "survive as long as possible"
    else:
        raise ValueError(f"{task_id!r} is not a MineDojo programmatic task id (harvest_…, combat_…, "
                         "techtree_from_…_to_…, survival)")
    return MineDojoGoal(key, category, target, quantity, prompt or _official_prompt(key) or default)


def _official_prompt(task_id: str) -> str | None:
    if not minedojo_available():
        return None
    from minedojo.tasks import ALL_PROGRAMMATIC_TASK_INSTRUCTIONS  # the (prompt, guidance) of every task

    found = ALL_PROGRAMMATIC_TASK_INSTRUCTIONS.get(task_id)
    return found[0] if found else None


# --- observations ---
def inventory_counts(obs: Mapping[str, Any]) -> dict[str, float]:
    """Total quantity per item name over the 36 slots ("air" dropped; names use spaces, as MineDojo's do)."""
    inventory = obs["inventory"]
    counts: dict[str, float] = {}
    for name, quantity in zip(inventory["name"], inventory["quantity"], strict=True):
        name = str(name).replace("_", " ")
        if name != "air":
            counts[name] = counts.get(name, 0.0) + float(quantity)
    return counts


def _frame(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 → (64, 64, 3) by nearest-neighbour sampling."""
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f"MineDojo's rgb observation is (3, H, W); got shape {tuple(rgb.shape)}")
    image = np.transpose(rgb, (1, 2, 0))
    rows = np.arange(FRAME_SIZE) * image.shape[0] // FRAME_SIZE
    cols = np.arange(FRAME_SIZE) * image.shape[1] // FRAME_SIZE
    return np.ascontiguousarray(image[rows][:, cols], dtype=np.uint8)


def convert_observation(obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """MineDojo observation → ``{"image": (64, 64, 3) uint8, "state": life, food, oxygen, tracked counts}``."""
    life = obs.get("life_stats", {})
    counts = inventory_counts(obs)
    vitals = [float(np.asarray(life.get(k, [0.0])).reshape(-1)[0]) for k in ("life", "food", "oxygen")]
    state = np.array([*vitals, *(counts.get(item, 0.0) for item in TRACKED_ITEMS)], np.float32)
    return {"image": _frame(np.asarray(obs["rgb"])), "state": state}


def describe_observation(obs: Mapping[str, Any], goal: MineDojoGoal | None = None) -> str:
    """The planner's text view of a MineDojo observation."""
    life = obs.get("life_stats", {})
    parts = [f"Goal: {goal.prompt}." if goal else ""]
    vitals = {k: float(np.asarray(life[k]).reshape(-1)[0]) for k in ("life", "food") if k in life}
    if vitals:
        parts.append("Health {life:.0f}/20, food {food:.0f}/20.".format(**{"life": 0, "food": 0, **vitals}))
    counts = inventory_counts(obs)
    held = ", ".join(f"{int(n)} {name}" for name, n in sorted(counts.items()))
    parts.append(f"Inventory: {held or 'empty'}.")
    tools = obs.get("nearby_tools", {})
    near = [name.replace("_", " ") for name in ("table", "furnace") if bool(np.asarray(tools.get(name, False)).any())]
    if near:
        parts.append("Nearby: " + ", ".join(f"a {'crafting table' if n == 'table' else n}" for n in near) + ".")
    location = obs.get("location_stats", {})
    if "pos" in location:
        x, y, z = (float(v) for v in np.asarray(location["pos"]).reshape(-1)[:3])
        parts.append(f"Position ({x:.0f}, {y:.0f}, {z:.0f}).")
    return " ".join(p for p in parts if p)


# --- actions ---
_MOVES = {"forward": (0, 1), "back": (0, 2), "left": (1, 1), "right": (1, 2),
          "jump": (2, 1), "sneak": (2, 2), "sprint": (2, 3)}
_TURNS = {"turn left": (4, -1), "turn right": (4, 1), "look up": (3, -1), "look down": (3, 1)}


def noop_action() -> np.ndarray:
    return np.array([0, 0, 0, CAMERA_BINS // 2, CAMERA_BINS // 2, 0, 0, 0], np.int64)


def encode_action(name: str, *, craft_items: Sequence[str] = (), inventory_names: Sequence[str] = ()) -> np.ndarray:
    """A named action → MineDojo's 8-dim MultiDiscrete vector (``NNActionSpaceWrapper`` layout).

    ``craft_items`` is MineDojo's ``MC.ALL_CRAFT_SMELT_ITEMS`` (the craft argument's vocabulary) and
    ``inventory_names`` the current 36 slot names (equip/place/destroy take a slot).

    Raises:
        ValueError: an unknown action, or an item that cannot be crafted / is not held.
    """
    action = noop_action()
    key = " ".join(name.strip().lower().replace("_", " ").split())
    if key in _MOVES:
        dim, value = _MOVES[key]
        action[dim] = value
        return action
    if key in _TURNS:
        dim, sign = _TURNS[key]
        action[dim] = CAMERA_BINS // 2 + sign
        return action
    verb, _, item = key.partition(" ")
    if verb in ("attack", "use", "drop") and not item:
        action[5] = FUNCTIONAL.index(verb)
        return action
    if verb == "craft" and item:
        vocabulary = [c.replace("_", " ") for c in craft_items]
        if item not in vocabulary:
            raise ValueError(f"cannot craft {item!r}; craftable: {', '.join(vocabulary[:12]) or 'none given'}")
        action[5], action[6] = FUNCTIONAL.index("craft"), vocabulary.index(item)
        return action
    if verb in ("equip", "place", "destroy") and item:
        slots = [s.replace("_", " ") for s in inventory_names]
        if item not in slots:
            held = ", ".join(sorted(set(slots) - {"air"})) or "empty"
            raise ValueError(f"cannot {verb} {item!r}: not in the inventory ({held})")
        action[5], action[7] = FUNCTIONAL.index(verb), slots.index(item)
        return action
    known = [*_MOVES, *_TURNS, "attack", "use", "drop", "craft ITEM", "equip ITEM", "place ITEM", "destroy ITEM"]
    raise ValueError(f"unknown MineDojo action {name!r}; known: {', '.join(known)}")


class MineDojoEnv(gymnasium.Env):
    """``minedojo.make(task_id, image_size)`` with embodia's observation, goal and ``describe``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, task_id: str = "harvest_1_log", image_size: tuple[int, int] = (160, 256)) -> None:
        if not minedojo_available():
            raise MineDojoUnavailableError(INSTALL_HINT)
        import minedojo

        self.goal = parse_task(task_id)
        try:
            self._env = minedojo.make(task_id=task_id, image_size=image_size)
        except Exception as exc:  # its launcher fails in many ways (gradle, Java, display)
            raise MineDojoUnavailableError(f"MineDojo could not start {task_id!r}: {exc}. {INSTALL_HINT}") from exc
        self.action_space = gymnasium.spaces.MultiDiscrete([3, 3, 4, CAMERA_BINS, CAMERA_BINS, 8, 244, 36])
        self.observation_space = gymnasium.spaces.Dict({
            "image": gymnasium.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8),
            "state": gymnasium.spaces.Box(0, np.inf, (3 + len(TRACKED_ITEMS),), np.float32),
        })
        self._last: Mapping[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._last = self._env.reset()
        return convert_observation(self._last), {"instruction": self.goal.prompt}

    def step(self, action: np.ndarray):
        self._last, reward, done, info = self._env.step(np.asarray(action))
        success = bool(getattr(self._env, "is_successful", False))
        info = {**info, "success": self.goal.is_achieved(inventory_counts(self._last), success)}
        return convert_observation(self._last), float(reward), bool(done and success), bool(done and not success), info

    def describe(self, info: dict[str, Any] | None = None) -> str:
        return describe_observation(self._last, self.goal) if self._last is not None else f"Goal: {self.goal.prompt}."

    def close(self) -> None:
        self._env.close()
