"""Crafter as a gymnasium env (DESIGN §3): deterministic, with a text view and privileged state.

Crafter speaks the old gym API and is not reproducible under a seed: ``World._balance_object``
picks the creature to despawn from a ``set`` whose order depends on memory addresses. The
``_SeededCrafter`` subclass sorts those candidates, so the same seed and actions give the same
trajectory. ``CrafterEnv`` adds the gymnasium API, a dict observation, ``describe()`` for the
planner, and read-only accessors (``semantic``, ``inventory``, ...) for the scripted skills.
"""

from __future__ import annotations

from typing import Any, ClassVar

import crafter
import gymnasium
import numpy as np
from crafter import constants, objects

from tools.envs.crafter_deaths import DeathTracker

ACTION_NAMES: tuple[str, ...] = tuple(constants.actions)
ITEM_NAMES: tuple[str, ...] = tuple(constants.items)  # 16: health, food, drink, energy, sapling, wood, ...
ACHIEVEMENTS: tuple[str, ...] = tuple(constants.achievements)  # 22, alphabetical
MATERIAL_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(constants.materials)}  # water=1 ... furnace=12
CREATURE_TYPES: tuple[type, ...] = (
    objects.Player,
    objects.Cow,
    objects.Zombie,
    objects.Skeleton,
    objects.Arrow,
    objects.Plant,
)
OBJECT_IDS: dict[str, int] = {
    cls.__name__.lower(): len(MATERIAL_IDS) + 1 + i for i, cls in enumerate(CREATURE_TYPES)
}  # player=13 ... plant=18
SEMANTIC_NAMES: dict[int, str] = {v: k for k, v in {**MATERIAL_IDS, **OBJECT_IDS}.items()}
VITALS: tuple[str, ...] = ("health", "food", "drink", "energy")
VIEW_RADIUS: tuple[int, int] = (4, 3)  # the local view shows 9 x 7 tiles around the player (2 rows hold items)
DIRECTIONS: dict[tuple[int, int], str] = {(-1, 0): "west", (1, 0): "east", (0, -1): "north", (0, 1): "south"}

#: ``obs["state"]`` layout: 16 inventory values (crafter order, 0-9), 22 achievement counts clipped to 9
#: (alphabetical order), daylight in [0, 1], facing (dx, dy) in {-1, 0, 1}, sleeping flag.
STATE_FIELDS: tuple[str, ...] = (
    *(f"inventory/{n}" for n in ITEM_NAMES),
    *(f"achievement/{n}" for n in ACHIEVEMENTS),
    "daylight",
    "facing_x",
    "facing_y",
    "sleeping",
)
_STATE_LOW = np.array([0] * (len(ITEM_NAMES) + len(ACHIEVEMENTS)) + [0, -1, -1, 0], np.float32)
_STATE_HIGH = np.array([9] * (len(ITEM_NAMES) + len(ACHIEVEMENTS)) + [1, 1, 1, 1], np.float32)
#: Things ``describe`` reports when visible; grass, sand and path are everywhere and say nothing.
_DESCRIBED = (
    "water",
    "stone",
    "tree",
    "coal",
    "iron",
    "diamond",
    "lava",
    "table",
    "furnace",
    "cow",
    "zombie",
    "skeleton",
    "plant",
    "arrow",
)


class _SeededCrafter(crafter.Env):
    """crafter.Env whose creature despawning does not depend on memory addresses."""

    def _balance_object(
        self, chunk, objs, cls, material, span_dist, despan_dist, spawn_prob, despawn_prob, ctor, target_fn
    ):
        ordered = sorted(objs, key=lambda o: (type(o).__name__, int(o.pos[0]), int(o.pos[1])))
        super()._balance_object(
            chunk, ordered, cls, material, span_dist, despan_dist, spawn_prob, despawn_prob, ctor, target_fn
        )


def daylight_phase(daylight: float) -> str:
    """Name the light level: zombies spawn as it drops, so "night" means danger in the open."""
    if daylight < 0.35:
        return "night"
    return "dusk" if daylight < 0.7 else "day"


def direction_words(dx: int, dy: int) -> str:
    """Compass words for an offset (north is up, i.e. negative y)."""
    vertical = "north" if dy < 0 else "south" if dy > 0 else ""
    horizontal = "west" if dx < 0 else "east" if dx > 0 else ""
    return "-".join(w for w in (vertical, horizontal) if w) or "here"


class CrafterEnv(gymnasium.Env):
    """Crafter (64x64 world, 9x9 view) with the gymnasium API.

    ``render()`` returns a ``render_size`` x ``render_size`` frame (default 256) drawn by crafter at
    that resolution, for videos; the 64x64 observation stays what policies see.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        seed: int | None = None,
        length: int = 10000,
        size: int = 64,
        render_mode: str | None = "rgb_array",
        render_size: int = 256,
    ) -> None:
        self._env = _SeededCrafter(
            area=(64, 64), view=(9, 9), size=(size, size), length=length, seed=0 if seed is None else seed
        )
        self._initial_seed = seed
        self.render_mode = render_mode
        self.render_size = render_size
        self.action_space = gymnasium.spaces.Discrete(len(ACTION_NAMES))
        self.observation_space = gymnasium.spaces.Dict(
            {
                "image": gymnasium.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gymnasium.spaces.Box(_STATE_LOW, _STATE_HIGH, dtype=np.float32),
            }
        )
        self._last_info: dict[str, Any] | None = None
        self._seen = np.zeros((64, 64), bool)
        self._deaths = DeathTracker()

    # gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is None and self._initial_seed is not None:
            seed, self._initial_seed = self._initial_seed, None
        if seed is not None:
            self._env._seed, self._env._episode = seed, 0
        elif self._env._player is None:  # first reset without any seed: draw one from np_random
            self._env._seed = int(self.np_random.integers(0, 2**31 - 1))
        image = self._env.reset()
        self._deaths.reset()
        self._seen = np.zeros(self.world.area, bool)
        self._mark_seen()
        self._last_info = self._info(reward=0.0, discount=1.0)
        return self._obs(image), dict(self._last_info)

    def step(self, action: int):
        self._deaths.before(self.world, self.player)
        image, reward, done, info = self._env.step(int(action))
        self._deaths.after(self.world, self.player)
        self._mark_seen()
        terminated = info["discount"] == 0
        truncated = bool(done and not terminated)
        self._last_info = self._info(
            reward=float(info["reward"]), discount=float(info["discount"]), semantic=info["semantic"]
        )
        return self._obs(image), float(reward), bool(terminated), truncated, dict(self._last_info)

    def render(self) -> np.ndarray:
        return self._env.render(size=(self.render_size, self.render_size))

    def observe(self) -> dict[str, np.ndarray]:
        """The current observation without stepping, for a policy that takes over mid-episode."""
        return self._obs(self._env.render())

    # observation and info ------------------------------------------------------------------
    def _obs(self, image: np.ndarray) -> dict[str, np.ndarray]:
        player = self.player
        state = np.concatenate(
            [
                [player.inventory[n] for n in ITEM_NAMES],
                np.minimum([player.achievements[n] for n in ACHIEVEMENTS], 9),
                [self.daylight, *player.facing, float(player.sleeping)],
            ]
        ).astype(np.float32)
        return {"image": image.astype(np.uint8), "state": np.clip(state, _STATE_LOW, _STATE_HIGH)}

    def _info(self, reward: float, discount: float, semantic: np.ndarray | None = None) -> dict[str, Any]:
        player = self.player
        return {
            "inventory": dict(player.inventory),
            "achievements": dict(player.achievements),
            "discount": discount,
            "semantic": self._env._sem_view() if semantic is None else semantic,
            "player_pos": np.array(player.pos, dtype=np.int64),
            "reward": reward,
            "daylight": self.daylight,
            "facing": tuple(int(v) for v in player.facing),
            "sleeping": bool(player.sleeping),
        }

    # privileged accessors (for scripted skills, never for learned policies) ---------------
    @property
    def world(self) -> Any:
        return self._env._world

    @property
    def player(self) -> Any:
        return self._env._player

    @property
    def semantic(self) -> np.ndarray:
        """Whole 64x64 map, crafter IDs: materials 1-12 (``MATERIAL_IDS``), objects 13-18 on top."""
        return self._env._sem_view()

    @property
    def materials(self) -> np.ndarray:
        """Material map only (no creatures), a copy."""
        return self.world._mat_map.copy()

    @property
    def inventory(self) -> dict[str, int]:
        return dict(self.player.inventory)

    @property
    def achievements(self) -> dict[str, int]:
        return dict(self.player.achievements)

    @property
    def player_pos(self) -> tuple[int, int]:
        return int(self.player.pos[0]), int(self.player.pos[1])

    @property
    def facing(self) -> tuple[int, int]:
        return int(self.player.facing[0]), int(self.player.facing[1])

    @property
    def daylight(self) -> float:
        return float(self.world.daylight)

    @property
    def death_cause(self) -> str | None:
        """What killed the player (``crafter_deaths.DEATH_CAUSES``), None while alive."""
        return self._deaths.cause if self.player.health <= 0 else None

    @property
    def seen(self) -> np.ndarray:
        """Tiles that have been inside the local view this episode (a copy), for exploration."""
        return self._seen.copy()

    def _mark_seen(self) -> None:
        (px, py), (rx, ry) = self.player_pos, VIEW_RADIUS
        self._seen[max(0, px - rx) : px + rx + 1, max(0, py - ry) : py + ry + 1] = True

    @property
    def steps(self) -> int:
        return int(self._env._step or 0)

    # text view for the planner ---------------------------------------------------------------
    def visible_things(self) -> dict[str, tuple[int, int]]:
        """Nearest visible (dx, dy) offset of each described kind in the local 9x7 view."""
        sem = self.semantic
        px, py = self.player_pos
        rx, ry = VIEW_RADIUS
        nearest: dict[str, tuple[int, int]] = {}
        for x in range(max(0, px - rx), min(sem.shape[0], px + rx + 1)):
            for y in range(max(0, py - ry), min(sem.shape[1], py + ry + 1)):
                name = SEMANTIC_NAMES.get(int(sem[x, y]), "")
                if name not in _DESCRIBED:
                    continue
                dx, dy = x - px, y - py
                best = nearest.get(name)
                if best is None or (abs(dx) + abs(dy), dy, dx) < (abs(best[0]) + abs(best[1]), best[1], best[0]):
                    nearest[name] = (dx, dy)
        return nearest

    def describe(self, info: dict[str, Any] | None = None) -> str:
        """Compact, deterministic text of the state (about 60-120 tokens) for an LLM planner."""
        inventory = (info or {}).get("inventory") or self.player.inventory
        achievements = (info or {}).get("achievements") or self.player.achievements
        items = [f"{n} {inventory[n]}" for n in ITEM_NAMES if n not in VITALS and inventory[n] > 0]
        vitals = ", ".join(f"{n} {inventory[n]}/9" for n in VITALS)
        fx, fy = self.facing
        faced_id = int(self.semantic[self.player_pos[0] + fx, self.player_pos[1] + fy]) if self._in_map(fx, fy) else 0
        faced = SEMANTIC_NAMES.get(faced_id, "edge of the world")
        things = sorted(self.visible_things().items(), key=lambda kv: (abs(kv[1][0]) + abs(kv[1][1]), kv[0]))
        nearby = [
            f"{name} {abs(dx) + abs(dy)} step{'s' if abs(dx) + abs(dy) != 1 else ''} {direction_words(dx, dy)}"
            for name, (dx, dy) in things
        ]
        unlocked = [n for n in ACHIEVEMENTS if achievements[n] > 0]
        phase = daylight_phase(self.daylight) + (", sleeping" if self.player.sleeping else "")
        return "\n".join(
            [
                f"Inventory: {', '.join(items) or 'empty'}.",
                f"Vitals: {vitals}.",
                f"Time: {phase}. Facing {DIRECTIONS[(fx, fy)]}: {faced}.",
                f"Nearby: {', '.join(nearby) or 'only grass'}.",
                f"Achievements: {', '.join(unlocked) or 'none yet'}.",
            ]
        )

    def _in_map(self, dx: int, dy: int) -> bool:
        x, y = self.player_pos[0] + dx, self.player_pos[1] + dy
        return 0 <= x < self.world.area[0] and 0 <= y < self.world.area[1]
