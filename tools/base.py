"""The Tool contract (DESIGN §4): what the planner may call, and what comes back.

A tool has a ``name``, a ``description``, a JSON schema of its ``inputs`` and a
``forward`` method. Calling a tool never raises for bad arguments or failures
inside ``forward``: the error becomes a ``ToolResult(ok=False, error=...)`` so it
lands in memory and the planner can react, as smolagents stores errors in steps.
"""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import numpy as np

JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass
class ToolResult:
    """What a tool returns: success flag, text for the planner, optional payloads."""

    ok: bool
    text: str
    observation: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-safe view (no image array) for logs and memory."""
        return {"ok": self.ok, "text": self.text, "data": self.data, "error": self.error}


class Tool:
    """Base class: set ``name``, ``description``, ``inputs`` and implement ``forward``.

    ``inputs`` maps argument names to ``{"type": <json type>, "description": str}``
    (optionally ``"enum"``). ``setup`` runs once, lazily, before the first call so
    that expensive loading never happens at import or registration time.
    """

    name: str = ""
    description: str = ""
    inputs: dict[str, dict[str, Any]] = {}
    output_type: str = "object"

    def __init__(self) -> None:
        self._is_setup = False

    def setup(self) -> None:
        """Load what the tool needs; called once before the first ``forward``."""

    def forward(self, **kwargs: Any) -> ToolResult:
        raise NotImplementedError("forward(**inputs) -> ToolResult")

    def validate_arguments(self, arguments: dict[str, Any]) -> str | None:
        """Return an error message when ``arguments`` do not fit ``inputs``."""
        unknown = sorted(set(arguments) - set(self.inputs))
        if unknown:
            return f"unknown argument(s) {unknown}; {self.name} takes {sorted(self.inputs)}"
        for arg, spec in self.inputs.items():
            if arg not in arguments:
                if not spec.get("nullable", False):
                    return f"missing argument {arg!r} ({spec.get('description', '')})"
                continue
            value = arguments[arg]
            expected = spec["type"]
            python_types = [t for t, name in JSON_TYPES.items() if name == expected]
            if python_types and not isinstance(value, tuple(python_types)):
                return f"argument {arg!r} must be {expected}, got {type(value).__name__}"
            if "enum" in spec and value not in spec["enum"]:
                return f"argument {arg!r} must be one of {spec['enum']}, got {value!r}"
        return None

    def __call__(self, **arguments: Any) -> ToolResult:
        problem = self.validate_arguments(arguments)
        if problem:
            return ToolResult(ok=False, text=f"{self.name}: {problem}", error=problem)
        if not self._is_setup:
            self.setup()
            self._is_setup = True
        try:
            return self.forward(**arguments)
        except Exception as exc:  # a tool failure is a result, never a crash of the agent
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return ToolResult(ok=False, text=f"{self.name} failed: {detail}", error=traceback.format_exc(),
                              data={"exception": type(exc).__name__})

    def spec(self) -> dict[str, Any]:
        """JSON-schema description, as shown to planners and web UIs."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": self.inputs,
                "required": [k for k, v in self.inputs.items() if not v.get("nullable")],
            },
        }


def _parse_arg_docs(doc: str) -> dict[str, str]:
    """Read ``Args:`` lines (Google style) into {name: description}."""
    docs: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args:
            match = re.match(r"(\w+)(?:\s*\([^)]*\))?:\s*(.*)", stripped)
            if match:
                docs[match.group(1)] = match.group(2)
            elif not stripped or stripped.endswith(":"):
                in_args = False
    return docs


class FunctionTool(Tool):
    """A tool built from a typed function by :func:`tool`."""

    def __init__(self, fn: Callable[..., ToolResult]) -> None:
        super().__init__()
        self._fn = fn
        self.name = fn.__name__
        doc = inspect.getdoc(fn) or ""
        self.description = doc.split("\n\n")[0].strip()
        arg_docs = _parse_arg_docs(doc)
        hints = get_type_hints(fn)
        params = inspect.signature(fn).parameters
        self.inputs = {}
        for name, param in params.items():
            if name not in hints or hints[name] not in JSON_TYPES:
                raise TypeError(f"@tool {fn.__name__}: argument {name!r} needs a str/int/float/bool type hint")
            self.inputs[name] = {"type": JSON_TYPES[hints[name]], "description": arg_docs.get(name, "")}
            if param.default is not inspect.Parameter.empty:
                self.inputs[name]["nullable"] = True

    def forward(self, **kwargs: Any) -> ToolResult:
        return self._fn(**kwargs)


def tool(fn: Callable[..., ToolResult]) -> FunctionTool:
    """Make a Tool from a function's type hints and ``Args:`` docstring (no code generation)."""
    return FunctionTool(fn)


class ToolRegistry:
    """The allowlist of tools a planner may call; anything else is refused as a result."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.register(t)

    def register(self, t: Tool) -> None:
        if not t.name:
            raise ValueError(f"{type(t).__name__} has no name; set `name` before registering it")
        if t.name in self._tools:
            raise ValueError(f"tool {t.name!r} is already registered")
        self._tools[t.name] = t

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        if name not in self._tools:
            message = f"unknown tool {name!r}; available: {', '.join(self.names)}"
            return ToolResult(ok=False, text=message, error=message)
        return self._tools[name](**arguments)
