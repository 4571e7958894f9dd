"""Goal understanding (agents.goals + the Crafter matcher) on real requests: no LLM needed on this path."""

import pytest

from agents.goals import is_question, resolve_goal, split_request
from agents.llm.base import LLM
from evals.bench_requests import CATEGORIES, evaluate, load_cases, meets
from tools.envs.crafter_goals import MAX_REQUEST_CHARS, match_goal, unknown_words


@pytest.mark.parametrize(("request_text", "achievement"), [
    ("mine a block of stone", "collect_stone"),  # refused before issue 25, the right goal only named
    ("dig up some coal", "collect_coal"),
    ("chop down a tree", "collect_wood"),
    ("put down a crafting table", "place_table"),
    ("set up a workbench", "place_table"),
    ("forge an iron sword", "make_iron_sword"),
    ("can you get some wood?", "collect_wood"),  # a polite request, not a question
    ("have a drink", "collect_drink"),  # 'have' without a subject after it is no question
])
def test_paraphrases_run_the_goal_and_say_which(request_text: str, achievement: str):
    resolution = resolve_goal(request_text)
    assert resolution.kind == "goal" and [g.achievement for g in resolution.parts] == [achievement]
    assert resolution.message == f"goal: {resolution.goal.phrase}"


@pytest.mark.parametrize(("request_text", "parts"), [
    ("put down a crafting table and make a wood pickaxe", ["place_table", "make_wood_pickaxe"]),
    ("make a stone pickaxe and then collect coal", ["make_stone_pickaxe", "collect_coal"]),
    ("get iron and make an iron sword", ["collect_iron", "make_iron_sword"]),  # was silently one goal
    ("first get wood, after that place a table", ["collect_wood", "place_table"]),
    ("make a sword after you get wood", ["collect_wood", "make_wood_sword"]),  # said in reverse order
    ("get stone and coal", ["collect_stone", "collect_coal"]),  # the verb carries over
    ("make every wooden tool", ["make_wood_pickaxe", "make_wood_sword"]),
    ("make wooden tools", ["make_wood_pickaxe", "make_wood_sword"]),
    ("get ready for the night", ["collect_wood", "place_table", "make_wood_sword", "wake_up"]),
])
def test_compound_and_open_requests_become_ordered_parts(request_text: str, parts: list[str]):
    resolution = resolve_goal(request_text)
    assert resolution.kind == "goals" and [g.achievement for g in resolution.parts] == parts
    assert resolution.goal == resolution.parts[0] and resolution.message.startswith("goals: 1) ")
    assert resolution.message.count("→") == len(parts) - 1


def test_sleep_and_wake_up_is_one_goal_not_two():
    assert [g.achievement for g in resolve_goal("sleep and wake up").parts] == ["wake_up"]


def test_an_impossible_part_is_named_and_the_rest_kept():
    resolution = resolve_goal("fly to the moon and then get wood")
    assert [g.achievement for g in resolution.parts] == ["collect_wood"]
    assert resolution.skipped == ("fly to the moon",) and resolution.message.startswith("I cannot do 'fly to the moon'")


def test_not_achievable_is_refused_with_the_reason():
    resolution = resolve_goal("collect gold")
    assert resolution.kind == "refused" and resolution.goal is None and not resolution.parts
    assert "This world has no 'gold'" in resolution.message and unknown_words("mine gold") == ["gold"]


def test_unsure_asks_back_with_the_top_options():
    resolution = resolve_goal("make a stone tool")
    assert resolution.kind == "unsure" and resolution.goal is None
    options = [g.achievement for g in resolution.options]
    assert {"make_stone_pickaxe", "make_stone_sword"} <= set(options)
    assert "Did you mean: 1) " in resolution.message


@pytest.mark.parametrize("text", ["what do you have?", "where is the nearest tree?", "why did you do that?",
                                  "how do I make a stone pickaxe"])
def test_questions_are_told_apart(text: str):
    assert is_question(text) and resolve_goal(text).kind == "question"


@pytest.mark.parametrize("text", ["", "   ", "[bold]shout[/]", "<script>alert(1)</script>", "récupère du bois"])
def test_bad_input_gets_a_clear_answer(text: str):
    resolution = resolve_goal(text)
    assert resolution.goal is None and resolution.kind == "refused" and resolution.message.startswith("I cannot do")
    if "è" in text:
        assert "in English only" in resolution.message


def test_a_very_long_request_is_refused_before_any_model_sees_it():
    class Unreachable(LLM):
        name = "unreachable"

        def generate(self, prompt, **kwargs):
            raise AssertionError("the model must not be asked")

        def score(self, prompt, options):
            raise AssertionError("the model must not be asked")

    resolution = resolve_goal("get wood and " * 100, Unreachable())
    assert resolution.kind == "refused" and f"a goal is at most {MAX_REQUEST_CHARS}" in resolution.message
    assert match_goal("x" * (MAX_REQUEST_CHARS + 1)).candidates == []


def test_split_request_keeps_the_order_said_and_reverses_after():
    assert split_request("collect wood, then place a table and finally make a sword") == [
        "collect wood", "place a table", "make a sword"]
    assert split_request("make a table once you have wood") == ["wood", "make a table"]


@pytest.mark.parametrize("name", ["dev", "eval"])
def test_the_shipped_request_sets_meet_the_targets_with_the_matcher(name: str):
    stats = evaluate(load_cases(name), None)
    assert set(stats) == set(CATEGORIES)
    assert stats["single"]["n"] >= 30 and stats["compound"]["n"] >= 15
    assert stats["not_goal"]["n"] >= 10 and stats["question"]["n"] >= 10
    assert all(meets(category, row) for category, row in stats.items()), stats


def test_the_real_planner_is_asked_only_when_unsure_and_only_confirms(embedded_model_dir):
    from agents.llm import make_llm

    llm = make_llm("transformers:smollm2")
    assert resolve_goal("mine a block of stone", llm).parts[0].achievement == "collect_stone"
    assert resolve_goal("fly to the moon", llm).kind == "refused"
    assert llm.usage.calls == 0  # confident and impossible requests never reach the model
    matcher = resolve_goal("make a diamond pickaxe")
    resolution = resolve_goal("make a diamond pickaxe", llm)
    assert llm.usage.calls == 1 and resolution.model_error is None
    assert resolution.kind == "unsure" or resolution.goal == matcher.options[0]  # never a goal of its own
