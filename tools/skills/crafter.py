"""Scripted expert skills for Crafter: the agent's hands (DESIGN §4, ``act``).

Each skill reads privileged state (the full map, inventory) from ``env.unwrapped`` and steps
the env it is given, so recorders and other wrappers see every step. A skill stops when its
achievement count rises (success), or with a specific, actionable failure reason for the planner.
Requirements (``requires``/``consumes``/``gives``/``near``) come from crafter's own data.yaml,
so they stay right for this crafter version (here a table costs 2 wood, a furnace 4 stone and
needs no table nearby, and chopping a tree removes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import gymnasium
import numpy as np
from crafter import constants, objects

from tools.base import ToolResult
from tools.envs.crafter import ACTION_NAMES, MATERIAL_IDS, CrafterEnv, daylight_phase
from tools.skills.navigation import DIRS, MOVE_ACTIONS, WALKABLE_IDS, cell_kinds, neighbours_mask, plan

#: A ``near`` thing (table, furnace) counts as "within reach" of ``make`` when it lies within this
#: Chebyshev distance of the player; the skill then walks next to it. Farther away, the skill fails
#: so that the planner learns to place a new one instead of trekking back.
NEAR_RADIUS = 6
#: Skills (except eat cow, drink water and sleep) give up when health falls to this level or lower.
HEALTH_CRITICAL = 3
#: Longest walk (path cost) the sleep skill accepts to reach a stone pocket for a shelter.
SHELTER_SEARCH = 40
#: ``explore`` succeeds after this many never-seen tiles came into view.
EXPLORE_NEW_TILES = 40

_ACTION_INDEX = {name: i for i, name in enumerate(ACTION_NAMES)}
_CREATURES = {"cow": objects.Cow, "zombie": objects.Zombie, "skeleton": objects.Skeleton, "plant": objects.Plant}
_ITEM_OF_MATERIAL = {m: next(iter(info["receive"])) for m, info in constants.collect.items()}
_NO_HEALTH_WATCH = ("eat cow", "drink water", "sleep")


@dataclass(frozen=True)
class SkillSpec:
    """What a skill needs, uses and gives; the planner reasons over these fields."""

    name: str
    verb: str
    target: str
    requires: dict[str, int]
    consumes: dict[str, int]
    gives: dict[str, int]
    near: tuple[str, ...]
    achievement: str | None
    budget: int
    description: str

    def missing(self, inventory: Mapping[str, int]) -> dict[str, int]:
        """The required items ``inventory`` holds too few of, with the amounts required."""
        return {item: n for item, n in self.requires.items() if inventory.get(item, 0) < n}


def _build_skills() -> dict[str, SkillSpec]:
    specs: list[SkillSpec] = []
    budgets = {"tree": 300, "stone": 300, "coal": 400, "iron": 800, "diamond": 1500, "water": 300, "grass": 300}
    for material, info in constants.collect.items():
        item = _ITEM_OF_MATERIAL[material]
        name = "drink water" if material == "water" else f"collect {item}"
        tools = ", ".join(f"needs {k}" for k in info["require"]) or "no tool needed"
        source = "" if material in (item, "water") else f" from {material}"
        chance = f" ({int(info['probability'] * 100)}% per hit)" if "probability" in info else ""
        specs.append(
            SkillSpec(
                name,
                "drink" if material == "water" else "collect",
                "water" if material == "water" else item,
                dict(info["require"]),
                {},
                dict(info["receive"]),
                (),
                f"collect_{item}",
                budgets[material],
                f"walk to the nearest {material} and collect {item}{source}{chance}; {tools}",
            )
        )
    for thing, info in constants.place.items():
        where = "/".join(info["where"])
        specs.append(
            SkillSpec(
                f"place {thing}",
                "place",
                thing,
                dict(info["uses"]),
                dict(info["uses"]),
                {},
                tuple(info.get("nearby", ())),
                f"place_{thing}",
                100,
                f"place a {thing} on an adjacent {where} tile; uses {_items(info['uses'])}",
            )
        )
    for tool, info in constants.make.items():
        specs.append(
            SkillSpec(
                f"make {tool}",
                "make",
                tool,
                dict(info["uses"]),
                dict(info["uses"]),
                {tool: info["gives"]},
                tuple(info["nearby"]),
                f"make_{tool}",
                100,
                f"craft a {tool} next to a {' and a '.join(info['nearby'])} (within {NEAR_RADIUS} tiles, else fails); "
                f"uses {_items(info['uses'])}",
            )
        )
    specs += [
        SkillSpec(
            "eat cow",
            "eat",
            "cow",
            {},
            {},
            {"food": 6},
            (),
            "eat_cow",
            400,
            "chase the nearest cow and hit it until eaten (+6 food)",
        ),
        SkillSpec(
            "eat plant",
            "eat",
            "plant",
            {},
            {},
            {"food": 4},
            ("plant",),
            "eat_plant",
            1500,
            "guard a planted sapling (placing one if held, walling it with stone) until ripe, then eat it",
        ),
        SkillSpec(
            "sleep",
            "sleep",
            "",
            {},
            {},
            {"energy": 9},
            (),
            "wake_up",
            600,
            "dig a stone shelter if a pickaxe is held, then sleep until rested (wake_up)",
        ),
        SkillSpec(
            "fight zombie",
            "fight",
            "zombie",
            {},
            {},
            {},
            (),
            "defeat_zombie",
            400,
            "walk to the nearest zombie and hit it until defeated",
        ),
        SkillSpec(
            "fight skeleton",
            "fight",
            "skeleton",
            {},
            {},
            {},
            (),
            "defeat_skeleton",
            800,
            "go into the tunnels to the nearest skeleton and hit it until defeated",
        ),
        SkillSpec(
            "explore",
            "explore",
            "",
            {},
            {},
            {},
            (),
            None,
            100,
            f"walk toward unseen parts of the map until {EXPLORE_NEW_TILES} new tiles are seen",
        ),
    ]
    return {spec.name: spec for spec in specs}


def _items(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"


SKILLS: dict[str, SkillSpec] = _build_skills()


class _Stop(Exception):
    """Ends a skill run from deep inside its loop: success, or failure with a reason."""

    def __init__(self, ok: bool, reason: str = "") -> None:
        super().__init__(reason)
        self.ok, self.reason = ok, reason


@dataclass
class _Run:
    """One skill call: steps the given (possibly wrapped) env and watches for the stop conditions."""

    env: gymnasium.Env
    spec: SkillSpec
    budget: int
    steps: int = 0
    terminated: bool = False
    truncated: bool = False
    start_inventory: dict[str, int] = field(default_factory=dict)
    start_achievements: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_inventory = self.game.inventory
        self.start_achievements = self.game.achievements
        self.observation: np.ndarray | None = None

    @property
    def game(self) -> CrafterEnv:
        return self.env.unwrapped  # type: ignore[return-value]

    def act(self, action: str) -> None:
        if self.steps >= self.budget:
            raise _Stop(False, f"step budget of {self.budget} ran out before {self.spec.name} succeeded")
        obs, _, terminated, truncated, _ = self.env.step(_ACTION_INDEX[action])
        self.obs = obs
        self.observation = obs["image"]
        self.steps += 1
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        if self.achieved():
            raise _Stop(True)
        if terminated:
            raise _Stop(False, "the player died")
        if truncated:
            raise _Stop(False, "the episode reached its time limit")
        health = self.game.inventory["health"]
        start = self.start_inventory["health"]
        if self.spec.name not in _NO_HEALTH_WATCH and health <= HEALTH_CRITICAL and health < start:
            raise _Stop(False, f"health dropped to {health}/9; eat, drink or sleep to recover before retrying")

    def achieved(self) -> bool:
        ach = self.spec.achievement
        unlocked = ach is not None and self.game.achievements[ach] > self.start_achievements[ach]
        if self.spec.verb == "drink":  # one sip is +1: keep drinking until full, as a planner means it
            return unlocked and self.game.inventory["drink"] >= constants.items["drink"]["max"]
        if self.spec.verb == "sleep" and getattr(self, "shelter", False):
            # Rested but still dark: stay walled in until morning, when the zombies thin out.
            return unlocked and daylight_phase(self.game.daylight) == "day"
        return unlocked

    # map views --------------------------------------------------------------------------
    def mask(self, thing: str) -> np.ndarray:
        """Cells holding a material or creature called ``thing``."""
        if thing in _CREATURES:
            out = np.zeros(self.game.world.area, bool)
            for obj in self.game.world.objects:
                if isinstance(obj, _CREATURES[thing]):
                    out[tuple(obj.pos)] = True
            return out
        return self.game.world._mat_map == MATERIAL_IDS[thing]

    def occupied(self) -> np.ndarray:
        out = np.zeros(self.game.world.area, bool)
        for obj in self.game.world.objects:
            if obj is not self.game.player:
                out[tuple(obj.pos)] = True
        return out

    def kinds(self, creatures_block: bool = True) -> np.ndarray:
        occupied = self.occupied() if creatures_block else self.mask("plant")
        return cell_kinds(self.game.world._mat_map, occupied, self.game.inventory["wood_pickaxe"] > 0)

    def faced(self) -> tuple[int, int]:
        (x, y), (dx, dy) = self.game.player_pos, self.game.facing
        return x + dx, y + dy

    # movement ---------------------------------------------------------------------------
    def step_dir(self, direction: int) -> None:
        """Take one step of a planned path: dig when facing stone on the way, else move/turn."""
        dx, dy = DIRS[direction]
        x, y = self.game.player_pos
        target = (x + dx, y + dy)
        material, obj = self.game.world[target]
        if material == "lava":  # the planner never routes here; a guard against stepping in by turning
            raise _Stop(False, "lava blocks the way")
        if self.game.facing == (dx, dy) and obj is None and material == "stone":
            self.act("do")
        else:
            self.act(MOVE_ACTIONS[direction])

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
                raise _Stop(False, f"no {what} on the map")
            route = plan(self.kinds(), self.game.player_pos, self.game.facing, pos_mask, face_mask)
            if route is None:
                if (
                    plan(self.kinds(creatures_block=False), self.game.player_pos, self.game.facing, pos_mask, face_mask)
                    is None
                ):
                    hint = "" if self.game.inventory["wood_pickaxe"] else " (a wood_pickaxe would let me dig)"
                    raise _Stop(False, f"no reachable {what} on the map{hint}")
                self.act("noop")  # creatures block the way; they move
                continue
            if route[0] is None:
                return
            self.step_dir(route[0])


# skills -------------------------------------------------------------------------------------
def _walkable_free(run: _Run) -> np.ndarray:
    return np.isin(run.game.world._mat_map, WALKABLE_IDS) & ~run.occupied()


def _collect(run: _Run) -> None:
    material = (
        next(m for m, item in _ITEM_OF_MATERIAL.items() if item == run.spec.target)
        if run.spec.verb == "collect"
        else "water"
    )

    def targets() -> np.ndarray:
        mask = run.mask(material)
        return mask & ~run.occupied() if material == "grass" else mask

    while True:
        run.goto(material, face=targets)
        run.act("do")


def _placeable(run: _Run, thing: str) -> np.ndarray:
    where = [MATERIAL_IDS[m] for m in constants.place[thing]["where"] if m != "lava"]
    mask = np.isin(run.game.world._mat_map, where) & ~run.occupied()
    x, y = run.game.player_pos
    mask[x, y] = False
    return mask


def _place(run: _Run) -> None:
    thing = run.spec.target
    other = {"table": "furnace", "furnace": "table"}.get(thing)
    beside = None
    if other and _nearest(run, other) is not None:
        # Stand next to the other station while placing, so one cell touches both (iron tools).
        beside = lambda: neighbours_mask(run.mask(other), chebyshev=True)  # noqa: E731
    while True:
        run.goto(f"free tile to place a {thing}", face=lambda: _placeable(run, thing), pos=beside)
        run.act(f"place_{thing}")


def _nearest(run: _Run, thing: str) -> int | None:
    """Chebyshev distance to the nearest ``thing`` when within ``NEAR_RADIUS``, else None."""
    xs, ys = np.nonzero(run.mask(thing))
    if len(xs) == 0:
        return None
    px, py = run.game.player_pos
    dist = np.maximum(np.abs(xs - px), np.abs(ys - py)).min()
    return int(dist) if dist <= NEAR_RADIUS else None


def _make(run: _Run) -> None:
    px, py = run.game.player_pos
    for thing in run.spec.near:
        if _nearest(run, thing) is None:
            xs, ys = np.nonzero(run.mask(thing))
            where = (
                f"nearest {thing} is {int((np.abs(xs - px) + np.abs(ys - py)).min())} steps away"
                if len(xs)
                else f"no {thing} on the map"
            )
            run.missing_near = thing  # type: ignore[attr-defined]
            raise _Stop(False, f"no {thing} within reach ({where}); place a {thing} first")

    def stand() -> np.ndarray:
        mask = _walkable_free(run)
        for thing in run.spec.near:
            mask &= neighbours_mask(run.mask(thing), chebyshev=True)
        return mask

    if len(run.spec.near) > 1 and not stand().any():
        first, *rest = run.spec.near
        run.missing_near = first  # type: ignore[attr-defined]
        raise _Stop(
            False,
            f"no free tile touches both the {first} and the {' and '.join(rest)}; "
            f"place a new {first} next to the {rest[0]}",
        )
    run.goto(f"spot next to {' and '.join(run.spec.near)}", pos=stand)
    run.act(f"make_{run.spec.target}")
    raise _Stop(False, f"make_{run.spec.target} had no effect")


def _hunt(run: _Run) -> None:
    """Eat a cow or fight a zombie/skeleton: chase it (replanning as it moves) and hit it."""
    kind = run.spec.target
    while True:
        run.goto(kind, face=lambda: run.mask(kind), ignore=kind)
        run.act("do")


def _pockets(run: _Run, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Entrances q and first cells s (= q + d) of 2-cell dead-end pockets along direction ``d``.

    The player enters s and s + d (digging stone if needed), steps back into s and seals q with a
    stone; the pocket's other five neighbours must already be walls no creature can cross.
    """
    mat = run.game.world._mat_map
    occupied = run.occupied()
    walk = np.isin(mat, WALKABLE_IDS)
    roomy = (walk | (mat == MATERIAL_IDS["stone"])) & ~occupied
    wall = ~walk & (mat != MATERIAL_IDS["lava"])
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


def _shelter(run: _Run) -> bool:
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


def _sleep(run: _Run) -> None:
    if run.game.inventory["energy"] >= constants.items["energy"]["max"]:
        raise _Stop(False, "energy is full (9/9); sleep only works when tired")
    sheltered = _shelter(run)
    run.shelter = sheltered  # type: ignore[attr-defined]
    while True:
        if not run.game.player.sleeping and run.defend():
            continue
        run.act("sleep")


def _eat_plant(run: _Run) -> None:
    def ripe() -> np.ndarray:
        out = np.zeros(run.game.world.area, bool)
        for obj in run.game.world.objects:
            if isinstance(obj, objects.Plant) and obj.ripe:
                out[tuple(obj.pos)] = True
        return out

    if not run.mask("plant").any():
        if not run.game.inventory["sapling"]:
            raise _Stop(False, "no plant on the map and no sapling held; collect sapling, then place plant")
        before = run.game.achievements["place_plant"]
        while run.game.achievements["place_plant"] == before:
            run.goto("grass tile to plant on", face=lambda: _placeable(run, "plant"))
            run.act("place_plant")
    if not ripe().any():
        _guard_plant(run)
    while True:
        run.goto("ripe plant", face=ripe)
        run.act("do")


def _guard_plant(run: _Run) -> None:
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
            raise _Stop(False, "the plant was destroyed by a creature before it ripened")
        run.goto("plant", face=lambda: run.mask("plant"))
        run.act("do")


def _explore(run: _Run) -> None:
    seen = run.game.seen

    def unseen() -> np.ndarray:
        return ~run.game.seen & _walkable_free(run)

    while True:
        if int((run.game.seen & ~seen).sum()) >= EXPLORE_NEW_TILES:
            raise _Stop(True)
        run.goto("unexplored walkable area", pos=unseen)


_RUNNERS: dict[str, Callable[[_Run], None]] = {
    "collect": _collect,
    "drink": _collect,
    "place": _place,
    "make": _make,
    "fight": _hunt,
    "sleep": _sleep,
    "explore": _explore,
}


def _runner(spec: SkillSpec) -> Callable[[_Run], None]:
    if spec.verb == "eat":
        return _eat_plant if spec.target == "plant" else _hunt
    return _RUNNERS[spec.verb]


def run_skill(
    env: gymnasium.Env, name: str, budget: int | None = None, attempt_budget: int | None = None
) -> ToolResult:
    """Run the scripted skill ``name`` on ``env`` until it succeeds, fails, or ``budget`` steps pass.

    A skill whose requirements are missing fails at once without a step: the runner's own hand-written
    check. With ``attempt_budget`` the script is tried anyway for at most that many steps (placing a table
    with one wood, mining stone bare-handed), as a robot without the check would: the world model's
    training data learns what a failed attempt looks like, and a blind planner pays for one in env steps.
    """
    return _execute(env, name, budget, lambda run: _runner(run.spec)(run), attempt_budget)


def run_policy_skill(
    env: gymnasium.Env, name: str, choose: Callable[[dict[str, np.ndarray]], int], budget: int | None = None
) -> ToolResult:
    """Run skill ``name`` with each action from ``choose(obs)`` (e.g. a learned policy) instead of the script.

    The stop rules, failure reasons and result data are the expert's, so the two are interchangeable.
    """

    def drive(run: _Run) -> None:
        obs = run.game.observe()
        while True:
            run.act(ACTION_NAMES[choose(obs)])
            obs = run.obs

    return _execute(env, name, budget, drive)


def _execute(
    env: gymnasium.Env, name: str, budget: int | None, body: Callable[[_Run], None],
    attempt_budget: int | None = None,
) -> ToolResult:
    key = " ".join(name.strip().lower().replace("_", " ").split())
    spec = SKILLS.get(key) or next((s for s in SKILLS.values() if s.name.replace("_", " ") == key), None)
    if spec is None:
        message = f"unknown skill {name!r}; known skills: {', '.join(sorted(SKILLS))}"
        return ToolResult(ok=False, text=message, error=message, data={"skill": name, "reason": message})
    run = _Run(env, spec, spec.budget if budget is None else budget)
    missing = spec.missing(run.start_inventory)
    try:
        if missing and attempt_budget is None:
            have = ", ".join(f"{run.start_inventory.get(k, 0)} {k}" for k in missing)
            raise _Stop(False, f"need {_items(spec.requires)} to {spec.name} (have {have})")
        if missing:
            run.budget = min(run.budget, attempt_budget)
        body(run)
        raise _Stop(False, f"{spec.name} stopped without success")
    except _Stop as stop:
        ok, reason = stop.ok, stop.reason
    inventory = run.game.inventory
    delta = {k: inventory[k] - run.start_inventory[k] for k in inventory if inventory[k] != run.start_inventory[k]}
    ach = run.game.achievements
    unlocked = [k for k in ach if ach[k] > run.start_achievements[k]]
    data = {
        "skill": spec.name,
        "steps": run.steps,
        "inventory_delta": delta,
        "achievements_unlocked": unlocked,
        "terminated": run.terminated,
        "truncated": run.truncated,
    }
    if spec.verb == "sleep":
        data["sheltered"] = getattr(run, "shelter", False)
    if ok:
        text = f"{spec.name}: done in {run.steps} steps" + (f"; unlocked {', '.join(unlocked)}" if unlocked else "")
        return ToolResult(ok=True, text=text, observation=run.observation, data=data)
    data["reason"] = reason
    if hasattr(run, "missing_near"):
        data["missing_near"] = run.missing_near
    return ToolResult(
        ok=False, text=f"{spec.name} failed: {reason}", observation=run.observation, data=data, error=reason
    )
