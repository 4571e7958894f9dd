"""The Tool contract: schema from type hints, argument validation, errors as results."""

from tools.base import Tool, ToolRegistry, ToolResult, tool


@tool
def add(a: int, b: int = 1) -> ToolResult:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return ToolResult(ok=True, text=str(a + b), data={"sum": a + b})


class Explodes(Tool):
    name = "explodes"
    description = "always raises"
    inputs: dict = {}

    def forward(self) -> ToolResult:
        raise RuntimeError("boom")


def test_tool_decorator_builds_schema_from_hints_and_docstring():
    spec = add.spec()
    assert spec["name"] == "add"
    assert spec["description"] == "Add two numbers."
    assert spec["parameters"]["properties"]["a"] == {"type": "integer", "description": "the first number"}
    assert spec["parameters"]["required"] == ["a"]
    assert add(a=2, b=3).data == {"sum": 5}
    assert add(a=2).text == "3"


def test_bad_arguments_become_results_not_exceptions():
    assert add(a="two").ok is False
    assert "must be integer" in add(a="two").error
    assert "unknown argument" in add(a=1, c=2).error
    assert "missing argument 'a'" in add().error


def test_exceptions_inside_forward_are_recorded():
    result = Explodes()()
    assert not result.ok
    assert "RuntimeError: boom" in result.text
    assert result.data == {"exception": "RuntimeError"}
    assert "Traceback" in result.error


def test_registry_is_an_allowlist():
    registry = ToolRegistry([add, Explodes()])
    assert registry.names == ["add", "explodes"]
    refused = registry.call("shell", {"cmd": "rm -rf /"})
    assert not refused.ok and "unknown tool 'shell'" in refused.text
    assert registry.call("add", {"a": 1}).text == "2"
