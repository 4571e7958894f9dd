"""Evaluation suites: a YAML file naming the env, the goals, seed splits, step budget and agent overrides.

    name: crafter-goals
    env: crafter
    goals: [collect_wood, place_table]   # achievement names or goal phrases; or `goals: open`
    seeds: {dev: [0, 1], heldout: "100-119"}
    max_steps: 2000                      # env steps per episode (the env's length)
    steps_per_goal: 2000                 # open suites only: budget of each goal pursued in turn
    agent: {max_decisions: 100}          # RafaConfig overrides for the agents built on it

Every problem (bad YAML, unknown key, wrong type, unknown goal) raises :class:`SuiteError`
naming the file, the line and the key, because a suite is edited by hand and a typo
should cost seconds, not a wasted run. Sizes are bounded for the same reason: a suite file
over :data:`MAX_SUITE_BYTES`, a YAML alias (a few lines of nested aliases expand to gigabytes;
suites need none) or a goal phrase longer than any request may be (``MAX_REQUEST_CHARS``, the one bound
of ``tools.envs.crafter_goals``) is refused before any work.
The ``agent:`` block is checked against the type hints of :class:`~agents.rafa.RafaConfig`,
nested values included, so a bad value fails here and not in every episode.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agents.rafa import RafaConfig
from tools.envs.crafter_goals import GOALS, MAX_REQUEST_CHARS, match_goal
from tools.seeds import parse_seeds

ENVS = ("crafter",)
OPEN = "open"
#: RafaConfig fields a suite may not override: they are what distinguishes the agents.
_AGENT_DEFINING = ("lookahead", "replan", "max_env_steps")
_KEYS = ("name", "description", "env", "goals", "seeds", "max_steps", "steps_per_goal", "agent")
_REQUIRED = ("env", "goals", "seeds", "max_steps")
#: Bounds on what a hand-written suite may ask for; shipped suites are under 2 kB with phrases under 40 chars.
MAX_SUITE_BYTES = 256 * 1024


class SuiteError(ValueError):
    """A suite file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Suite:
    """A validated suite; ``goals`` holds achievement names, or is empty for the open-ended episode."""

    name: str
    path: Path
    env: str
    goals: tuple[str, ...]
    seeds: dict[str, tuple[int, ...]]
    max_steps: int
    steps_per_goal: int
    agent: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def open_ended(self) -> bool:
        return not self.goals

    def split(self, name: str) -> tuple[int, ...]:
        if name not in self.seeds:
            raise SuiteError(f"{self.path}: no seed split {name!r}; splits: {', '.join(self.seeds)}")
        return self.seeds[name]

    def rafa_config(self, **agent_defaults: Any) -> RafaConfig:
        """The agent config for this suite: the agent's own switches, then the suite's overrides."""
        return build_config(RafaConfig, {**agent_defaults, **self.agent, "max_env_steps": self.max_steps})


def builtin_suites() -> dict[str, Path]:
    """Suites shipped as package data, by name (``smoke`` → ``evals/suites/smoke.yaml``)."""
    folder = resources.files("evals") / "suites"
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".yaml")}


def resolve_path(spec: str | Path) -> Path:
    """A suite file path, or the name of a built-in suite."""
    path = Path(spec)
    if path.exists():
        return path
    builtin = builtin_suites()
    if str(spec) in builtin:
        return builtin[str(spec)]
    raise SuiteError(f"no suite file {spec!r}; built-in suites: {', '.join(sorted(builtin))}")


def load_suite(spec: str | Path) -> Suite:
    """Read and validate a suite file (or built-in suite name)."""
    path = resolve_path(spec)
    if not path.is_file():
        raise SuiteError(f"{path}: not a file")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise SuiteError(f"{path}: {path.stat().st_size:,} bytes; a suite file is at most {MAX_SUITE_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read the suite: {exc}") from None
    try:
        loader = _NoAliasLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise SuiteError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a suite is a mapping of keys ({', '.join(_KEYS)})")
    return _Validator(path, node).suite(data)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``): the one way a few bytes of YAML become gigabytes."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{event.anchor}) are not allowed in "
                                              "suites; write the value out", event.start_mark)
        return super().compose_node(parent, index)


class _Validator:
    """Checks a parsed suite against the schema, with the YAML nodes at hand for line numbers."""

    def __init__(self, path: Path, root: yaml.MappingNode) -> None:
        self.path, self.root = path, root

    def fail(self, node: yaml.Node, key: str, problem: str) -> SuiteError:
        return SuiteError(f"{self.path}:{node.start_mark.line + 1}: {key}: {problem}")

    def node(self, parent: yaml.MappingNode, key: str, *, value: bool = True) -> yaml.Node:
        for key_node, value_node in parent.value:
            if key_node.value == key:
                return value_node if value else key_node
        return parent

    def suite(self, data: dict[str, Any]) -> Suite:
        self.check_keys(self.root, data, _KEYS, "")
        for key in _REQUIRED:
            if key not in data:
                raise SuiteError(f"{self.path}:1: missing required key {key!r}")
        env = data["env"]
        if env not in ENVS:
            raise self.fail(self.node(self.root, "env"), "env", f"unknown env {env!r}; valid envs: {', '.join(ENVS)}")
        max_steps = self.positive_int(data["max_steps"], "max_steps")
        steps_per_goal = self.positive_int(data.get("steps_per_goal", max_steps), "steps_per_goal")
        return Suite(
            name=str(data.get("name") or self.path.stem), path=self.path, env=env, goals=self.goals(data["goals"]),
            seeds=self.seeds(data["seeds"]), max_steps=max_steps, steps_per_goal=steps_per_goal,
            agent=self.agent(data.get("agent") or {}), description=str(data.get("description") or ""),
        )

    def check_keys(self, node: yaml.MappingNode, data: dict, valid: tuple[str, ...], prefix: str) -> None:
        for key in data:
            if key not in valid:
                key_node = self.node(node, key, value=False)
                raise self.fail(key_node, f"{prefix}{key}", f"unknown key; valid keys: {', '.join(valid)}")

    def positive_int(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(self.node(self.root, key), key, f"must be a positive integer, got {value!r}")
        return value

    def goals(self, value: Any) -> tuple[str, ...]:
        node = self.node(self.root, "goals")
        if value == OPEN:
            return ()
        if not isinstance(value, list) or not value:
            raise self.fail(node, "goals", f"must be a non-empty list of goals or {OPEN!r}, got {value!r}")
        goals: list[str] = []
        for item_node, item in zip(node.value, value, strict=True):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(item_node, "goals", f"each goal is an achievement name or phrase, got {item!r}")
            if len(item) > MAX_REQUEST_CHARS:
                raise self.fail(item_node, "goals", f"a goal phrase is at most {MAX_REQUEST_CHARS} characters, "
                                                    f"got {len(item):,}")
            achievement = item if item in GOALS else match_goal(str(item)).goal
            achievement = getattr(achievement, "achievement", achievement)
            if achievement is None:
                raise self.fail(item_node, "goals", f"unknown goal {item!r}; valid goals: {', '.join(GOALS)}")
            if achievement in goals:
                raise self.fail(item_node, "goals", f"goal {item!r} is listed twice")
            goals.append(achievement)
        return tuple(goals)

    def seeds(self, value: Any) -> dict[str, tuple[int, ...]]:
        node = self.node(self.root, "seeds")
        if not isinstance(value, dict) or not value:
            raise self.fail(node, "seeds", "must map split names (dev, heldout) to seed lists or 'A-B' ranges")
        splits: dict[str, tuple[int, ...]] = {}
        for name, seeds in value.items():
            split_node = self.node(node, name)
            try:
                parsed = parse_seeds(seeds)
            except ValueError as exc:
                raise self.fail(split_node, f"seeds.{name}", str(exc)) from None
            splits[str(name)] = parsed
        return splits

    def agent(self, value: Any) -> dict[str, Any]:
        node = self.node(self.root, "agent")
        if not isinstance(value, dict):
            raise self.fail(node, "agent", f"must be a mapping of agent settings, got {value!r}")
        valid = tuple(f.name for f in dataclasses.fields(RafaConfig) if f.name not in _AGENT_DEFINING)
        self.check_keys(node, value, valid, "agent.")
        self.check_fields(node, value, RafaConfig, "agent.")
        try:
            build_config(RafaConfig, value)
        except (TypeError, ValueError) as exc:
            raise self.fail(node, "agent", str(exc)) from None
        return dict(value)

    def check_fields(self, node: yaml.Node, value: dict[str, Any], cls: type, prefix: str) -> None:
        """Each value against its dataclass field's type hint, into nested dataclasses and containers."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        for key, setting in value.items():
            where = self.node(node, key) if isinstance(node, yaml.MappingNode) else node
            if key not in names:
                raise self.fail(where, f"{prefix}{key}", f"unknown key; valid keys: {', '.join(sorted(names))}")
            hint = hints[key]
            if dataclasses.is_dataclass(hint) and isinstance(setting, dict):
                self.check_fields(where, setting, hint, f"{prefix}{key}.")
            elif (problem := type_problem(setting, hint)) is not None:
                raise self.fail(where, f"{prefix}{key}", problem)


def type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` (as YAML parsed it) does not fit the type ``hint``; None when it does.

    Covers what config dataclasses use: bool/int/float/str, Literal, unions (``X | None``), and
    ``dict``/``list``/``tuple`` of those (YAML has lists only, so a tuple field takes a list).
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        problems = [type_problem(value, arm) for arm in args]
        return None if None in problems else f"must be {_hint_name(hint)}, got {value!r}"
    if origin is typing.Literal:
        return None if value in args else f"must be one of {', '.join(map(repr, args))}, got {value!r}"
    if hint is type(None):
        return None if value is None else f"must be null, got {value!r}"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is dict or hint is dict:
        if not isinstance(value, dict):
            return f"must be a mapping ({_hint_name(hint)}), got {value!r}"
        for key, item in value.items():
            problem = (type_problem(key, args[0]) if args else None) or (type_problem(item, args[1]) if args else None)
            if problem is not None:
                return f"{key!r}: {problem}"
        return None
    elif origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list):
            return f"must be a list ({_hint_name(hint)}), got {value!r}"
        items = args[:1] if origin is list or (len(args) == 2 and args[1] is Ellipsis) else args
        if items and len(items) > 1 and len(items) != len(value):
            return f"must be a list of {len(items)} items, got {value!r}"
        for index, item in enumerate(value):
            problem = type_problem(item, items[0] if len(items) == 1 else items[index]) if items else None
            if problem is not None:
                return f"item {index}: {problem}"
        return None
    elif dataclasses.is_dataclass(hint):
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, origin or hint)
    return None if ok else f"must be {_hint_name(hint)}, got {value!r}"


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint).replace("typing.", "")


def build_config(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)``, with a mapping given for a nested dataclass field built into that dataclass."""
    hints = typing.get_type_hints(cls)
    return cls(**{key: build_config(hints[key], value)
                  if key in hints and dataclasses.is_dataclass(hints[key]) and isinstance(value, dict) else value
                  for key, value in values.items()})
