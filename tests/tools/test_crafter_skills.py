"""Expert skills on the real env: chains reach their achievements; failures say why."""

import pytest

from tools.envs.crafter import CrafterEnv
from tools.skills.crafter import SKILLS, normalise_skill_name, run_skill

TECH_CHAIN = [  # stations are placed together at the end: a far-away table or furnace makes `make` fail
    *["collect wood"] * 5,
    "place table",
    "make wood_pickaxe",
    "collect stone",
    "make stone_pickaxe",
    "collect coal",
    "collect iron",
    *["collect stone"] * 4,
    *["collect wood"] * 2,
    "place table",
    "place furnace",
    "make iron_pickaxe",
]


def _env(seed: int) -> CrafterEnv:
    env = CrafterEnv(length=100000)
    env.reset(seed=seed)
    return env


def _ok(env, name):
    result = run_skill(env, name)
    assert result.ok, (name, result.text)
    assert result.data["skill"] == name and result.data["steps"] >= 1
    if SKILLS[name].achievement:
        assert SKILLS[name].achievement in result.data["achievements_unlocked"]
    return result


def test_specs_come_from_crafter_data():
    assert SKILLS["place table"].consumes == {"wood": 2}
    assert SKILLS["make iron_pickaxe"].near == ("table", "furnace")
    assert SKILLS["collect stone"].requires == {"wood_pickaxe": 1}
    assert SKILLS["collect wood"].gives == {"wood": 1}
    achievements = {s.achievement for s in SKILLS.values()} - {None}
    assert len(achievements) == 22


@pytest.mark.parametrize("seed", [1, 100, 104])
def test_tech_chain_to_iron_pickaxe(seed):
    env = _env(seed)
    for name in TECH_CHAIN:
        _ok(env, name)
    assert env.inventory["iron_pickaxe"] == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_survival_skills(seed):
    env = _env(seed)
    for name in ["eat cow", "drink water", "collect sapling", "place plant"]:
        _ok(env, name)


def test_place_stone_and_sheltered_sleep():
    env = _env(1)
    for name in [*["collect wood"] * 3, "place table", "make wood_pickaxe", "collect stone", "place stone"]:
        _ok(env, name)
    while env.inventory["energy"] == 9:  # sleep only works when tired
        env.step(0)
    result = _ok(env, "sleep")
    assert result.data["sheltered"]


def test_fight_zombie():
    env = _env(5)
    result = None
    for _ in range(5):
        result = run_skill(env, "fight zombie")
        if result.ok:
            break
        run_skill(env, "explore")
    assert result is not None and result.ok, result.text


def test_make_without_table_names_the_table():
    env = _env(1)
    _ok(env, "collect wood")
    result = run_skill(env, "make wood_pickaxe")
    assert not result.ok and "table" in result.data["reason"] and "table" in result.text
    assert result.data["missing_near"] == "table"


def test_missing_tool_and_unknown_skill_fail_cleanly():
    env = _env(1)
    result = run_skill(env, "collect stone")
    assert not result.ok and "need 1 wood_pickaxe" in result.data["reason"] and result.data["steps"] == 0
    assert not run_skill(env, "fly").ok


def test_skill_names_are_normalised_once_for_every_caller():
    assert normalise_skill_name("  Make_Wood   Pickaxe ") == "make wood_pickaxe"
    assert normalise_skill_name("COLLECT_wood") == "collect wood"
    assert normalise_skill_name("Fly  High") == "fly high"  # unknown names come back normalised for the message
    env = _env(1)
    result = run_skill(env, "Collect_Wood")
    assert result.ok and result.data["skill"] == "collect wood"


def test_a_failed_make_leaves_no_missing_station_when_it_had_one():
    env = _env(1)
    result = run_skill(env, "collect stone")
    assert "missing_near" not in result.data and "sheltered" not in result.data


def test_attempt_runs_a_skill_without_its_requirements_and_changes_nothing():
    env = _env(1)
    _ok(env, "collect wood")
    result = run_skill(env, "place table", budget=50, attempt_budget=6)  # a table costs 2 wood; one in hand
    assert not result.ok and result.data["steps"] == 6
    assert env.inventory["wood"] == 1 and env.achievements["place_table"] == 0
    _ok(env, "collect wood")
    result = run_skill(env, "place table", attempt_budget=6)  # requirements met: the attempt cap does not apply
    assert result.ok and env.achievements["place_table"] == 1


def test_skills_step_through_wrappers():
    import gymnasium

    env = gymnasium.wrappers.RecordEpisodeStatistics(CrafterEnv(length=100000))
    env.reset(seed=1)
    assert run_skill(env, "collect wood").ok


@pytest.mark.slow
@pytest.mark.parametrize("seed", [100, 101])
def test_diamond(seed):
    env = _env(seed)
    for name in [*TECH_CHAIN, "collect diamond"]:
        _ok(env, name)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="guarding a sapling 300+ steps through a night still loses the player or the plant", strict=False
)
def test_eat_plant():
    env = _env(1)
    for name in [*["collect wood"] * 3, "place table", "make wood_pickaxe", *["collect stone"] * 4, "collect sapling"]:
        _ok(env, name)
    for _ in range(8):  # guarding takes 300+ steps: recover between attempts, as a planner would
        if run_skill(env, "eat plant").ok:
            break
        for name in ("drink water", "eat cow", "sleep"):
            run_skill(env, name)
    assert env.achievements["eat_plant"] == 1


@pytest.mark.slow
def test_fight_skeleton():
    env = _env(100)
    for name in TECH_CHAIN[:9]:
        _ok(env, name)
    _ok(env, "fight skeleton")
