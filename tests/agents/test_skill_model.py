"""The skills' declared effects as a transition model, and backward-chaining plans over it."""

from agents.skill_model import Belief, SkillModel
from tools.skills.crafter import SKILLS

MODEL = SkillModel(SKILLS)
EMPTY = Belief(inventory={"health": 9, "food": 9, "drink": 9, "energy": 9})


def run_plan(belief: Belief, plan: list[str]) -> Belief:
    for name in plan:
        prediction, belief = MODEL.predict(belief, name)
        assert prediction.feasible, f"{name} infeasible in its own plan: {prediction.reason}"
    return belief


def test_wood_pickaxe_plan_from_nothing_is_feasible_and_minimal():
    plan = MODEL.plan(EMPTY, "make_wood_pickaxe")
    table_wood = SKILLS["place table"].consumes["wood"]
    assert plan.count("collect wood") == table_wood + SKILLS["make wood_pickaxe"].consumes["wood"]
    assert plan.index("place table") < plan.index("make wood_pickaxe") == len(plan) - 1
    assert run_plan(EMPTY, plan).count("wood_pickaxe") == 1


def test_iron_pickaxe_plan_chains_the_whole_tech_tree():
    plan = MODEL.plan(EMPTY, "make_iron_pickaxe")
    for step in ("place table", "make wood_pickaxe", "make stone_pickaxe", "place furnace", "collect coal",
                 "collect iron", "make iron_pickaxe"):
        assert step in plan
    assert run_plan(EMPTY, plan).achievements["make_iron_pickaxe"] == 1
    assert MODEL.plan(EMPTY, "not_an_achievement") is None


def test_check_names_what_is_missing():
    ok, reason = MODEL.check(EMPTY, "make wood_pickaxe")
    assert not ok and "wood" in reason
    with_wood = Belief(inventory={**EMPTY.inventory, "wood": 3})
    ok, reason = MODEL.check(with_wood, "make wood_pickaxe")
    assert not ok and reason == "no table within reach"
    assert MODEL.check(Belief(inventory=with_wood.inventory, reachable=frozenset({"table"})), "make wood_pickaxe")[0]
