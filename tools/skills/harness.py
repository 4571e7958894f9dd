"""One skill call: the harness that steps the env, watches the stop rules and offers map views.

Skill bodies (``tools.skills.bodies``) and learned policies (``run_policy_skill``) both drive a
:class:`SkillRun`; it raises :class:`Stop` on success, death, time-out, a health crisis or an empty
budget, so a body is a plain loop and every way out ends in the same result record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from crafter import constants, objects

from tools.envs.crafter import ACTION_NAMES, MATERIAL_IDS, CrafterEnv, daylight_phase
from tools.skills.navigation import DIRS, MOVE_ACTIONS, WALK, WALKABLE_IDS, cell_kinds, plan
from tools.skills.specs import SkillSpec

#: Skills (except eat cow, drink water and sleep) give up when health falls to this level or lower.
HEALTH_CRITICAL = 3

ACTION_INDEX = {name: i for i, name in enumerate(ACTION_NAMES)}
#: What a skill body may read: ``map`` (the whole world, privileged) or ``view`` (only the 9x7 tiles the player's
#: frame shows, as a pixel policy does).
SIGHTS = ("map", "view")
#: Half-width and half-height of the map part of Crafter's frame (``crafter.Env``: a 9x9 grid, 2 item rows).
VIEW_RADIUS = (4, 3)
#: The material id a ``view`` run gives tiles outside the frame.
UNKNOWN = -1
#: Clockwise successor of each direction index of ``DIRS`` (left -> up -> right -> down -> left, y pointing down).
CLOCKWISE = (2, 3, 1, 0)
CREATURES = {"cow": objects.Cow, "zombie": objects.Zombie, "skeleton": objects.Skeleton, "plant": objects.Plant}
_NO_HEALTH_WATCH = ("eat cow", "drink water", "sleep")


class Stop(Exception):
    """Ends a skill run from deep inside its loop: success, or failure with a reason."""

    def __init__(self, ok: bool, reason: str = "") -> None:
        super().__init__(reason)
        self.ok, self.reason = ok, reason


def check_sight(sight: str) -> str:
    """``sight`` if it is one of ``SIGHTS``; a ValueError listing them otherwise (every config taking one uses it)."""
    if sight not in SIGHTS:
        raise ValueError(f"sight must be one of {', '.join(SIGHTS)}, got {sight!r}")
    return sight


@dataclass
class SkillRun:
    """One skill call: steps the given (possibly wrapped) env and watches for the stop conditions.

    Args:
        env: the env to step (wrappers such as recorders see every step).
        spec: the skill being run.
        budget: env steps allowed before the run fails.
        steps: env steps taken so far.
        terminated, truncated: the last step's flags.
        obs: the last observation dict (None before the first step).
        sheltered: sleep dug a stone shelter (it then waits for daylight before waking counts).
        missing_near: the station a ``make`` failed for lack of (the planner places one).
        sight: ``map`` lets the body read the whole world; ``view`` only the tiles in the player's frame. A ``view``
            body searches by :meth:`explore_step` while its target is out of sight, so its next action is a function
            of the frame alone: the teacher a memoryless pixel policy can imitate.
        stop_on_new_threat: end the run (not a fight) when a zombie comes next to the player that was not there
            when it began, so the planner can choose to fight or flee. The scripted bodies hit adjacent zombies
            themselves; a learned skill rarely does, and a zombie kills it mid-errand (``run_policy_skill``).
    """

    env: gymnasium.Env
    spec: SkillSpec
    budget: int
    steps: int = 0
    terminated: bool = False
    truncated: bool = False
    obs: dict[str, Any] | None = None
    sheltered: bool = False
    missing_near: str | None = None
    sight: str = "map"
    stop_on_new_threat: bool = False
    start_inventory: dict[str, int] = field(init=False)
    start_threatened: bool = field(init=False)
    start_achievements: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        check_sight(self.sight)
        self.start_inventory = self.game.inventory
        self.start_achievements = self.game.achievements
        self.start_threatened = self.zombie_adjacent()

    @property
    def game(self) -> CrafterEnv:
        return self.env.unwrapped  # type: ignore[return-value]

    @property
    def observation(self) -> np.ndarray | None:
        """The last frame seen (None before the first step)."""
        return None if self.obs is None else self.obs["image"]

    def act(self, action: str) -> None:
        if self.steps >= self.budget:
            raise Stop(False, f"step budget of {self.budget} ran out before {self.spec.name} succeeded")
        obs, _, terminated, truncated, _ = self.env.step(ACTION_INDEX[action])
        self.obs = obs
        self.steps += 1
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        if self.achieved():
            raise Stop(True)
        if terminated:
            raise Stop(False, "the player died")
        if truncated:
            raise Stop(False, "the episode reached its time limit")
        health = self.game.inventory["health"]
        start = self.start_inventory["health"]
        if self.spec.name not in _NO_HEALTH_WATCH and health <= HEALTH_CRITICAL and health < start:
            raise Stop(False, f"health dropped to {health}/9; eat, drink or sleep to recover before retrying")
        if self.stop_on_new_threat and self.spec.verb != "fight" and not self.start_threatened \
                and self.zombie_adjacent():
            raise Stop(False, "a zombie came next to me; fight it or walk away before retrying")

    def achieved(self) -> bool:
        ach = self.spec.achievement
        unlocked = ach is not None and self.game.achievements[ach] > self.start_achievements[ach]
        if self.spec.verb == "drink":  # one sip is +1: keep drinking until full, as a planner means it
            return unlocked and self.game.inventory["drink"] >= constants.items["drink"]["max"]
        if self.spec.verb == "sleep" and self.sheltered:
            # Rested but still dark: stay walled in until morning, when the zombies thin out.
            return unlocked and daylight_phase(self.game.daylight) == "day"
        return unlocked

    # --- map views ---
    def visible(self) -> np.ndarray:
        """Cells the body may read: all of them with ``sight="map"``, the frame's 9x7 window with ``view``."""
        out = np.ones(self.game.world.area, bool)
        if self.sight == "view":
            out[:] = False
            (x, y), (rx, ry) = self.game.player_pos, VIEW_RADIUS
            out[max(0, x - rx) : x + rx + 1, max(0, y - ry) : y + ry + 1] = True
        return out

    def in_sight(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` restricted to the cells the body may read (unchanged with ``sight="map"``)."""
        return mask if self.sight == "map" else mask & self.visible()

    def materials(self) -> np.ndarray:
        """The material-id map, with ``UNKNOWN`` on the cells the body may not see."""
        mat = self.game.world._mat_map
        if self.sight == "map":
            return mat
        return np.where(self.visible(), mat, UNKNOWN)

    def mask(self, thing: str) -> np.ndarray:
        """Cells in sight holding a material or creature called ``thing``."""
        if thing in CREATURES:
            out = np.zeros(self.game.world.area, bool)
            for obj in self.game.world.objects:
                if isinstance(obj, CREATURES[thing]):
                    out[tuple(obj.pos)] = True
            return self.in_sight(out)
        return self.materials() == MATERIAL_IDS[thing]

    def occupied(self) -> np.ndarray:
        out = np.zeros(self.game.world.area, bool)
        for obj in self.game.world.objects:
            if obj is not self.game.player:
                out[tuple(obj.pos)] = True
        return self.in_sight(out)

    def kinds(self, creatures_block: bool = True) -> np.ndarray:
        """Cost-grid cell kinds (``tools.skills.navigation``); unseen cells count as walkable (free space assumed)."""
        occupied = self.occupied() if creatures_block else self.mask("plant")
        kinds = cell_kinds(self.game.world._mat_map, occupied, self.game.inventory["wood_pickaxe"] > 0)
        if self.sight == "view":
            kinds[~self.visible()] = WALK
        return kinds

    def faced(self) -> tuple[int, int]:
        (x, y), (dx, dy) = self.game.player_pos, self.game.facing
        return x + dx, y + dy

    # --- movement ---
    def step_dir(self, direction: int) -> None:
        """Take one step of a planned path: dig when facing stone on the way, else move/turn."""
        dx, dy = DIRS[direction]
        x, y = self.game.player_pos
        target = (x + dx, y + dy)
        material, obj = self.game.world[target]
        if material == "lava":  # the planner never routes here; a guard against stepping in by turning
            raise Stop(False, "lava blocks the way")
        if self.game.facing == (dx, dy) and obj is None and material == "stone":
            self.act("do")
        else:
            self.act(MOVE_ACTIONS[direction])

    def zombie_adjacent(self) -> bool:
        """A zombie on one of the four tiles next to the player (where it attacks from; it shows in the frame)."""
        x, y = self.game.player_pos
        return any(isinstance(self.game.world[(x + dx, y + dy)][1], objects.Zombie) for dx, dy in DIRS)

    def defend(self, ignore: str = "") -> bool:
        """Hit an adjacent zombie or skeleton (one action); True when it acted."""
        x, y = self.game.player_pos
        for i, (dx, dy) in enumerate(DIRS):
            _, obj = self.game.world[(x + dx, y + dy)]
            if isinstance(obj, (objects.Zombie, objects.Skeleton)) and type(obj).__name__.lower() != ignore:
                self.act("do" if self.game.facing == (dx, dy) else MOVE_ACTIONS[i])
                return True
        return False

    def goto(
        self,
        what: str,
        face: Callable[[], np.ndarray] | None = None,
        pos: Callable[[], np.ndarray] | None = None,
        ignore: str = "",
    ) -> None:
        """Walk until standing on ``pos()`` facing a ``face()`` tile (replanned every step)."""
        while True:
            if self.defend(ignore):
                continue
            face_mask = None if face is None else face()
            pos_mask = None if pos is None else pos()
            if (face_mask is not None and not face_mask.any()) or (pos_mask is not None and not pos_mask.any()):
                if self.sight == "view":
                    self.explore_step()
                    continue
                raise Stop(False, f"no {what} on the map")
            route = plan(self.kinds(), self.game.player_pos, self.game.facing, pos_mask, face_mask)
            if route is None:
                if self.sight == "view":  # in sight but walled off: look elsewhere
                    self.explore_step()
                    continue
                if (
                    plan(self.kinds(creatures_block=False), self.game.player_pos, self.game.facing, pos_mask, face_mask)
                    is None
                ):
                    hint = "" if self.game.inventory["wood_pickaxe"] else " (a wood_pickaxe would let me dig)"
                    raise Stop(False, f"no reachable {what} on the map{hint}")
                self.act("noop")  # creatures block the way; they move
                continue
            if route[0] is None:
                return
            self.step_dir(route[0])

    def explore_step(self) -> None:
        """One step of the memoryless search a ``view`` body makes while its target is out of sight.

        Ahead while the faced tile is free ground; blocked, toward whichever side (left or right of the facing) shows
        more free ground in the frame (clockwise on a tie), so it heads into open country instead of circling a
        corner; back only when both sides are blocked; wait when boxed in. Every input is in the frame.
        """
        x, y = self.game.player_pos
        ahead = DIRS.index(tuple(self.game.facing))
        right = CLOCKWISE[ahead]
        left = CLOCKWISE[CLOCKWISE[right]]
        free = np.isin(self.materials(), WALKABLE_IDS) & ~self.occupied()
        (rx, ry), (dx, dy) = VIEW_RADIUS, DIRS[right]
        window = free[max(0, x - rx) : x + rx + 1, max(0, y - ry) : y + ry + 1]
        xs, ys = np.nonzero(window)
        side = (xs + max(0, x - rx) - x) * dx + (ys + max(0, y - ry) - y) * dy  # > 0: right of the facing
        sides = (right, left) if (side > 0).sum() >= (side < 0).sum() else (left, right)
        for direction in (ahead, *sides, CLOCKWISE[right]):
            ddx, ddy = DIRS[direction]
            if 0 <= x + ddx < free.shape[0] and 0 <= y + ddy < free.shape[1] and free[x + ddx, y + ddy]:
                self.act(MOVE_ACTIONS[direction])
                return
        self.act("noop")
