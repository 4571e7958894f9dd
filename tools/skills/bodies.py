"""The scripted skill bodies: one plain loop per verb, driving a :class:`~tools.skills.harness.SkillRun`.

Each body reads privileged state (the full map, or with ``sight="view"`` the frame's tiles, and the inventory)
through the run's map views and steps the env through the run, which stops it with
:class:`~tools.skills.harness.Stop` on success or with a
specific, actionable failure reason for the planner.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from crafter import constants, objects

from tools.envs.crafter import MATERIAL_IDS
from tools.skills.harness import UNKNOWN, SkillRun, Stop
from tools.skills.navigation import DIRS, MOVE_ACTIONS, WALKABLE_IDS, neighbours_mask, plan
from tools.skills.specs import EXPLORE_NEW_TILES, ITEM_OF_MATERIAL, NEAR_RADIUS, SkillSpec

#: Longest walk (path cost) the sleep skill accepts to reach a stone pocket for a shelter.
SHELTER_SEARCH = 40


def _walkable_free(run: SkillRun) -> np.ndarray:
    return np.isin(run.materials(), WALKABLE_IDS) & ~run.occupied()


def _collect(run: SkillRun) -> None:
    material = (
        next(m for m, item in ITEM_OF_MATERIAL.items() if item == run.spec.target)
        if run.spec.verb == "collect"
        else "water"
    )

    def targets() -> np.ndarray:
        mask = run.mask(material)
        return mask & ~run.occupied() if material == "grass" else mask

    while True:
        run.goto(material, face=targets)
        run.act("do")


def _placeable(run: SkillRun, thing: str) -> np.ndarray:
    where = [MATERIAL_IDS[m] for m in constants.place[thing]["where"] if m != "lava"]
    mask = np.isin(run.materials(), where) & ~run.occupied()
    x, y = run.game.player_pos
    mask[x, y] = False
    return mask


def _place(run: SkillRun) -> None:
    thing = run.spec.target
    other = {"table": "furnace", "furnace": "table"}.get(thing)
    beside = None
    if other and _nearest(run, other) is not None:
        # Stand next to the other station while placing, so one cell touches both (iron tools).
        beside = lambda: neighbours_mask(run.mask(other), chebyshev=True)  # noqa: E731
    while True:
        run.goto(f"free tile to place a {thing}", face=lambda: _placeable(run, thing), pos=beside)
        run.act(f"place_{thing}")


def _nearest(run: SkillRun, thing: str) -> int | None:
    """Chebyshev distance to the nearest ``thing`` when within ``NEAR_RADIUS``, else None."""
    xs, ys = np.nonzero(run.mask(thing))
    if len(xs) == 0:
        return None
    px, py = run.game.player_pos
    dist = np.maximum(np.abs(xs - px), np.abs(ys - py)).min()
    return int(dist) if dist <= NEAR_RADIUS else None


def _make(run: SkillRun) -> None:
    px, py = run.game.player_pos
    for thing in run.spec.near:
        if _nearest(run, thing) is None:
            xs, ys = np.nonzero(run.mask(thing))
            where = (
                f"nearest {thing} is {int((np.abs(xs - px) + np.abs(ys - py)).min())} steps away"
                if len(xs)
                else f"no {thing} on the map"
            )
            run.missing_near = thing
            raise Stop(False, f"no {thing} within reach ({where}); place a {thing} first")

    def stand() -> np.ndarray:
        mask = _walkable_free(run)
        for thing in run.spec.near:
            mask &= neighbours_mask(run.mask(thing), chebyshev=True)
        return mask

    if len(run.spec.near) > 1 and not stand().any():
        first, *rest = run.spec.near
        run.missing_near = first
        raise Stop(
            False,
            f"no free tile touches both the {first} and the {' and '.join(rest)}; "
            f"place a new {first} next to the {rest[0]}",
        )
    run.goto(f"spot next to {' and '.join(run.spec.near)}", pos=stand)
    run.act(f"make_{run.spec.target}")
    raise Stop(False, f"make_{run.spec.target} had no effect")


def _hunt(run: SkillRun) -> None:
    """Eat a cow or fight a zombie/skeleton: chase it (replanning as it moves) and hit it."""
    kind = run.spec.target
    while True:
        run.goto(kind, face=lambda: run.mask(kind), ignore=kind)
        run.act("do")


def _pockets(run: SkillRun, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Entrances q and first cells s (= q + d) of 2-cell dead-end pockets along direction ``d``.

    The player enters s and s + d (digging stone if needed), steps back into s and seals q with a
    stone; the pocket's other five neighbours must already be walls no creature can cross.
    """
    mat = run.materials()
    occupied = run.occupied()
    walk = np.isin(mat, WALKABLE_IDS)
    roomy = (walk | (mat == MATERIAL_IDS["stone"])) & ~occupied
    wall = ~walk & (mat != MATERIAL_IDS["lava"]) & (mat != UNKNOWN)
    w, h = mat.shape
    dx, dy = DIRS[d]
    px, py = -dy, dx  # perpendicular

    def at(mask: np.ndarray, ox: int, oy: int) -> np.ndarray:
        """mask shifted so that out[x, y] = mask[x + ox, y + oy] (False outside)."""
        out = np.zeros_like(mask)
        xs, ys = slice(max(0, -ox), w - max(0, ox)), slice(max(0, -oy), h - max(0, oy))
        out[xs, ys] = mask[max(0, ox) : w + min(0, ox), max(0, oy) : h + min(0, oy)]
        return out

    s_ok = roomy & at(roomy, dx, dy) & at(wall, 2 * dx, 2 * dy)
    for k in (0, 1):
        s_ok &= at(wall, k * dx + px, k * dy + py) & at(wall, k * dx - px, k * dy - py)
    q_ok = walk & ~occupied & at(s_ok, dx, dy)
    return q_ok, s_ok


def _shelter(run: SkillRun) -> bool:
    """Dig into a stone pocket and seal it behind; False when none is near or it went wrong."""
    inv = run.game.inventory
    if not inv["wood_pickaxe"]:
        return False
    best = None
    for d in range(4):
        q_ok, s_ok = _pockets(run, d)
        if not q_ok.any():
            continue
        route = plan(run.kinds(), run.game.player_pos, run.game.facing, q_ok, s_ok)
        if route is not None and route[1] <= SHELTER_SEARCH and (best is None or route[1] < best[1]):
            best = (d, route[1])
    if best is None:
        return False
    d = best[0]
    run.goto("stone pocket", face=lambda: _pockets(run, d)[1], pos=lambda: _pockets(run, d)[0])
    if run.game.facing != DIRS[d]:
        return False
    for _ in range(2):  # into s, then into s + d
        start = run.game.player_pos
        for _ in range(3):
            if run.game.player_pos != start:
                break
            material, _ = run.game.world[run.faced()]
            run.act("do" if material == "stone" else MOVE_ACTIONS[d])
        if run.game.player_pos == start:
            return False
    run.act(MOVE_ACTIONS[DIRS.index((-DIRS[d][0], -DIRS[d][1]))])  # back into s, now facing q
    if run.game.inventory["stone"] == 0:
        return False
    run.act("place_stone")
    return run.game.world[run.faced()][0] == "stone"


def _sleep(run: SkillRun) -> None:
    if run.game.inventory["energy"] >= constants.items["energy"]["max"]:
        raise Stop(False, "energy is full (9/9); sleep only works when tired")
    run.sheltered = _shelter(run)
    while True:
        if not run.game.player.sleeping and run.defend():
            continue
        run.act("sleep")


def _eat_plant(run: SkillRun) -> None:
    def ripe() -> np.ndarray:
        out = np.zeros(run.game.world.area, bool)
        for obj in run.game.world.objects:
            if isinstance(obj, objects.Plant) and obj.ripe:
                out[tuple(obj.pos)] = True
        return run.in_sight(out)

    if not run.mask("plant").any():
        if not run.game.inventory["sapling"]:
            raise Stop(False, "no plant on the map and no sapling held; collect sapling, then place plant")
        before = run.game.achievements["place_plant"]
        while run.game.achievements["place_plant"] == before:
            run.goto("grass tile to plant on", face=lambda: _placeable(run, "plant"))
            run.act("place_plant")
    if not ripe().any():
        _guard_plant(run)
    while True:
        run.goto("ripe plant", face=ripe)
        run.act("do")


def _guard_plant(run: SkillRun) -> None:
    """Wall the nearest plant in with stone (as far as stone lasts) and wait beside it, hitting it.

    Any cow, zombie or skeleton next to a plant destroys it; hitting an unripe plant does nothing,
    so repeated ``do`` eats it the moment it ripens.
    """
    run.goto("plant", face=lambda: run.mask("plant"))
    plant = run.faced()
    stand = run.game.player_pos
    for dx, dy in DIRS:
        cell = (plant[0] + dx, plant[1] + dy)
        if cell == stand or run.game.world[cell][0] not in constants.walkable or not run.game.inventory["stone"]:
            continue
        target = np.zeros(run.game.world.area, bool)
        target[cell] = True
        avoid = np.ones(run.game.world.area, bool)
        avoid[plant] = False
        run.goto("spot to wall in the plant", face=lambda t=target: t, pos=lambda a=avoid: a)
        if run.game.world[cell][1] is None:
            run.act("place_stone")
    while True:
        if not run.mask("plant").any():
            raise Stop(False, "the plant was destroyed by a creature before it ripened")
        run.goto("plant", face=lambda: run.mask("plant"))
        run.act("do")


def _explore(run: SkillRun) -> None:
    seen = run.game.seen

    def unseen() -> np.ndarray:
        return ~run.game.seen & _walkable_free(run)

    while True:
        if int((run.game.seen & ~seen).sum()) >= EXPLORE_NEW_TILES:
            raise Stop(True)
        if run.sight == "view":  # what was seen before is memory a frame does not hold
            run.explore_step()
        else:
            run.goto("unexplored walkable area", pos=unseen)


BODIES: dict[str, Callable[[SkillRun], None]] = {
    "collect": _collect,
    "drink": _collect,
    "place": _place,
    "make": _make,
    "fight": _hunt,
    "sleep": _sleep,
    "explore": _explore,
}


def body_of(spec: SkillSpec) -> Callable[[SkillRun], None]:
    if spec.verb == "eat":
        return _eat_plant if spec.target == "plant" else _hunt
    return BODIES[spec.verb]
