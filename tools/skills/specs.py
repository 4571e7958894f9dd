"""What each scripted Crafter skill needs, uses and gives: the table the planner reasons over.

Requirements (``requires``/``consumes``/``gives``/``near``) come from crafter's own data.yaml, so
they stay right for this crafter version (here a table costs 2 wood, a furnace 4 stone and needs no
table nearby, and chopping a tree removes it). Only the hand-written skills (eating, sleeping,
fighting, exploring) are listed by hand, one keyword-built entry each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crafter import constants

#: A ``near`` thing (table, furnace) counts as "within reach" of ``make`` when it lies within this
#: Chebyshev distance of the player; the skill then walks next to it. Farther away, the skill fails
#: so that the planner learns to place a new one instead of trekking back.
NEAR_RADIUS = 6
#: ``explore`` succeeds after this many never-seen tiles came into view.
EXPLORE_NEW_TILES = 40

#: The item each collectable material yields (tree → wood, water → drink).
ITEM_OF_MATERIAL: dict[str, str] = {m: next(iter(info["receive"])) for m, info in constants.collect.items()}
_COLLECT_BUDGETS = {"tree": 300, "stone": 300, "coal": 400, "iron": 800, "diamond": 1500, "water": 300, "grass": 300}


@dataclass(frozen=True)
class SkillSpec:
    """What a skill needs, uses and gives; the planner reasons over these fields.

    Args:
        name: the skill's name as the planner writes it ("make wood pickaxe").
        verb: which skill body runs it (collect, drink, place, make, eat, sleep, fight, explore).
        target: the item, station or creature the verb acts on ("" for sleep and explore).
        requires: items that must be held to start (tools are required but not used up).
        consumes: items the skill uses up.
        gives: items (or vitals) the skill adds on success.
        near: stations that must be within ``NEAR_RADIUS`` (make) or on the map (eat plant).
        achievement: the Crafter achievement whose count rising means success (None: explore).
        budget: default env-step budget of one call.
        description: one line for the planner's tool description.
    """

    name: str
    verb: str
    target: str
    achievement: str | None
    budget: int
    description: str
    requires: dict[str, int] = field(default_factory=dict)
    consumes: dict[str, int] = field(default_factory=dict)
    gives: dict[str, int] = field(default_factory=dict)
    near: tuple[str, ...] = ()

    def missing(self, inventory: Mapping[str, int]) -> dict[str, int]:
        """The required items ``inventory`` holds too few of, with the amounts required."""
        return {item: n for item, n in self.requires.items() if inventory.get(item, 0) < n}


def items_text(counts: Mapping[str, int]) -> str:
    """``{"wood": 1, "stone": 1}`` → ``"1 wood, 1 stone"`` (``"nothing"`` when empty)."""
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"


def _collect_specs() -> list[SkillSpec]:
    specs = []
    for material, info in constants.collect.items():
        item = ITEM_OF_MATERIAL[material]
        water = material == "water"
        tools = ", ".join(f"needs {k}" for k in info["require"]) or "no tool needed"
        source = "" if material in (item, "water") else f" from {material}"
        chance = f" ({int(info['probability'] * 100)}% per hit)" if "probability" in info else ""
        specs.append(SkillSpec(
            name="drink water" if water else f"collect {item}", verb="drink" if water else "collect",
            target="water" if water else item, requires=dict(info["require"]), gives=dict(info["receive"]),
            achievement=f"collect_{item}", budget=_COLLECT_BUDGETS[material],
            description=f"walk to the nearest {material} and collect {item}{source}{chance}; {tools}"))
    return specs


def _place_specs() -> list[SkillSpec]:
    return [SkillSpec(
        name=f"place {thing}", verb="place", target=thing, requires=dict(info["uses"]), consumes=dict(info["uses"]),
        near=tuple(info.get("nearby", ())), achievement=f"place_{thing}", budget=100,
        description=f"place a {thing} on an adjacent {'/'.join(info['where'])} tile; uses {items_text(info['uses'])}")
        for thing, info in constants.place.items()]


def _make_specs() -> list[SkillSpec]:
    return [SkillSpec(
        name=f"make {tool}", verb="make", target=tool, requires=dict(info["uses"]), consumes=dict(info["uses"]),
        gives={tool: info["gives"]}, near=tuple(info["nearby"]), achievement=f"make_{tool}", budget=100,
        description=f"craft a {tool} next to a {' and a '.join(info['nearby'])} (within {NEAR_RADIUS} tiles, "
                    f"else fails); uses {items_text(info['uses'])}")
        for tool, info in constants.make.items()]


_HAND_WRITTEN = [
    SkillSpec(name="eat cow", verb="eat", target="cow", gives={"food": 6}, achievement="eat_cow", budget=400,
              description="chase the nearest cow and hit it until eaten (+6 food)"),
    SkillSpec(name="eat plant", verb="eat", target="plant", gives={"food": 4}, near=("plant",),
              achievement="eat_plant", budget=1500,
              description="guard a planted sapling (placing one if held, walling it with stone) until ripe, "
                          "then eat it"),
    SkillSpec(name="sleep", verb="sleep", target="", gives={"energy": 9}, achievement="wake_up", budget=600,
              description="dig a stone shelter if a pickaxe is held, then sleep until rested (wake_up)"),
    SkillSpec(name="fight zombie", verb="fight", target="zombie", achievement="defeat_zombie", budget=400,
              description="walk to the nearest zombie and hit it until defeated"),
    SkillSpec(name="fight skeleton", verb="fight", target="skeleton", achievement="defeat_skeleton", budget=800,
              description="go into the tunnels to the nearest skeleton and hit it until defeated"),
    SkillSpec(name="explore", verb="explore", target="", achievement=None, budget=100,
              description=f"walk toward unseen parts of the map until {EXPLORE_NEW_TILES} new tiles are seen"),
]

SKILLS: dict[str, SkillSpec] = {s.name: s for s in [*_collect_specs(), *_place_specs(), *_make_specs(), *_HAND_WRITTEN]}


def normalise_skill_name(name: str) -> str:
    """The skill name a planner or user meant: case, underscores and spacing do not matter.

    ``"Make_Wood  Pickaxe"`` → ``"make wood pickaxe"``; a name that matches no skill comes back
    normalised, so callers can name it in their error message.
    """
    key = " ".join(name.strip().lower().replace("_", " ").split())
    return next((k for k in SKILLS if k.replace("_", " ") == key), key)
