"""Prompt templates render strictly and name themselves in errors."""

import pytest

from prompts import PromptError, available, render_messages, render_text, version


def test_planner_prompt_renders_system_and_user():
    messages = render_messages("planner", goal="collect wood", state="Inventory: empty.", options=["collect wood"],
                               reflections=["a lesson"], recent=[])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Goal: collect wood" in messages[1]["content"]
    assert "- a lesson" in messages[1]["content"]
    assert len(version("planner")) == 12


def test_missing_variable_names_the_template():
    with pytest.raises(PromptError, match="planner"):
        render_messages("planner", goal="x")
    with pytest.raises(PromptError, match="available"):
        render_text("no_such_prompt")
    assert "planner" in available()


@pytest.mark.parametrize(("chosen", "future", "expected"), [
    ("collect wood", ["collect wood", "place table", "make wood pickaxe"],
     "collect wood\nPlan: collect wood → place table → make wood pickaxe."),
    ("eat cow", [], "eat cow\nPlan: ."),
    ("drink water", ["drink water"], "drink water\nPlan: drink water."),
])
def test_planner_target_keeps_the_trained_wording(chosen, future, expected):
    """The fine-tuning target moved from an f-string into planner_target.jinja byte for byte: the shipped
    adapter was trained on exactly this text."""
    from agents.planner_data import PlannerExample

    example = PlannerExample(seed=0, goal="collect wood", index=0, variables={}, chosen=chosen, future=future,
                             prompt_version=version("planner"))
    assert example.target() == expected
    assert example.target(rationale=False) == chosen
