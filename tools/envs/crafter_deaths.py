"""Why the player died in Crafter, read from the world itself rather than guessed from the frames.

Crafter (0.x) updates the player first, then every other object in the order they were added, and
checks ``health <= 0`` only after all of them. Within that step health can fall from:

- **lava**: the player walked onto lava (``Player._move`` sets health to 0);
- **thirst / hunger / fatigue**: ``_degen_or_regen_health`` takes 1 when drink, food or energy
  (energy only while awake) is 0 and the ``_recover`` counter passes -15 (it then resets to 0);
- **zombie**: an adjacent zombie whose cooldown was 0 strikes (2 damage, 7 on a sleeper) and its
  cooldown becomes 5;
- **skeleton**: an arrow (only skeletons shoot) whose next tile is the player hits for 2 and vanishes.

:class:`DeathTracker` snapshots what could hurt the player before each step (the ``_recover``
counter, zombie cooldowns and arrows within 3 tiles: nothing farther can reach the player in one
step), and when health is 0 after it replays those damages in Crafter's update order: the source
that takes health to 0 is the cause. Several vitals at 0 at once are blamed on the one that has
been at 0 longest (ties: thirst, hunger, fatigue), since it started the drain. Limits: it relies on
the private fields of crafter 1.8 (``_recover``, ``cooldown``, the world's object map); a death it cannot account for
(another crafter version, health set from outside) is ``"unknown"``, never a guess. It reads
state only (no random draws), so trajectories are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crafter import objects

DEATH_CAUSES: tuple[str, ...] = ("zombie", "skeleton", "lava", "thirst", "hunger", "fatigue", "unknown")
#: Vital inventory item -> the cause named when it ran out (tie order: thirst, hunger, fatigue).
_VITAL_CAUSE: dict[str, str] = {"drink": "thirst", "food": "hunger", "energy": "fatigue"}
_REACH = 3  # a zombie moves 1 and strikes at distance 1, the player moves 1: 3 covers everything that can hit


@dataclass
class _Before:
    """What could hurt the player, as it was just before a step."""

    health: int
    recover: float
    sleeping: bool
    zombies: list[tuple[int, Any, int]]  # (update order, zombie, cooldown)
    arrows: list[tuple[int, Any]]  # (update order, arrow)


@dataclass
class DeathTracker:
    """Call :meth:`before` ahead of every env step and :meth:`after` right after; ``cause`` is set on death."""

    cause: str | None = None
    _zero_since: dict[str, int] = field(default_factory=dict)  # vital -> step it reached 0
    _step: int = 0
    _snapshot: _Before | None = None

    def reset(self) -> None:
        self.cause, self._zero_since, self._step, self._snapshot = None, {}, 0, None

    def before(self, world: Any, player: Any) -> None:
        x, y = int(player.pos[0]), int(player.pos[1])
        ids = world._obj_map[max(0, x - _REACH) : x + _REACH + 1, max(0, y - _REACH) : y + _REACH + 1]
        near = [(int(i), world._objects[i]) for i in ids[ids > 0]]  # index in the object list = update order
        self._snapshot = _Before(
            int(player.health), float(player._recover), bool(player.sleeping),
            [(i, o, int(o.cooldown)) for i, o in near if isinstance(o, objects.Zombie)],
            [(i, o) for i, o in near if isinstance(o, objects.Arrow)])

    def after(self, world: Any, player: Any) -> str | None:
        """The cause if this step killed the player (also kept in ``cause``), else None."""
        self._step += 1
        for item in _VITAL_CAUSE:
            if player.inventory[item] > 0:
                self._zero_since.pop(item, None)
            else:
                self._zero_since.setdefault(item, self._step)
        if player.health <= 0 and self.cause is None and self._snapshot is not None:
            self.cause = self._replay(world, player, self._snapshot)
        return self.cause if player.health <= 0 else None

    def _replay(self, world: Any, player: Any, before: _Before) -> str:
        if world[player.pos][0] == "lava":
            return "lava"
        health = before.health
        if float(player._recover) == 0.0 and before.recover != 0.0:  # the counter rolled over this step
            health += 1 if before.recover > 0 else -1
            if health <= 0:
                return self._vital(player, before)
        hits: list[tuple[int, int, str]] = []  # (update order, damage, cause)
        for index, zombie, cooldown in before.zombies:  # only a strike resets a cooldown of 0 to 5
            if cooldown == 0 and zombie.cooldown == 5 and zombie.distance(player) <= 1:
                hits.append((index, 7 if player.sleeping else 2, "zombie"))
        for index, arrow in before.arrows:  # an arrow vanishes when it hits; its next tile holds the player
            if arrow.removed and tuple(arrow.pos + arrow.facing) == tuple(player.pos):
                hits.append((index, 2, "skeleton"))
        for _, damage, cause in sorted(hits, key=lambda h: h[0]):
            health -= damage
            if health <= 0:
                return cause
        return "unknown"

    def _vital(self, player: Any, before: _Before) -> str:
        asleep = before.sleeping or player.action == "sleep"  # energy 0 is no need while asleep
        empty = [item for item in _VITAL_CAUSE
                 if player.inventory[item] <= 0 and not (item == "energy" and asleep)]
        if not empty:
            return "unknown"
        return _VITAL_CAUSE[min(empty, key=lambda item: (self._zero_since.get(item, self._step),
                                                         list(_VITAL_CAUSE).index(item)))]
