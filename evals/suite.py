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
should cost seconds, not a wasted run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agents.rafa import RafaConfig
from tools.envs.crafter_goals import GOALS, match_goal

ENVS = ("crafter",)
OPEN = "open"
#: RafaConfig fields a suite may not override: they are what distinguishes the agents.
_AGENT_DEFINING = ("lookahead", "replan", "max_env_steps")
_KEYS = ("name", "description", "env", "goals", "seeds", "max_steps", "steps_per_goal", "agent")
_REQUIRED = ("env", "goals", "seeds", "max_steps")


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
        return RafaConfig(**{**agent_defaults, **self.agent, "max_env_steps": self.max_steps})


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
    text = path.read_text(encoding="utf-8")
    try:
        loader = yaml.SafeLoader(text)
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
        for key, setting in value.items():
            default = getattr(RafaConfig(), key)
            if type(setting) is not type(default) and not (isinstance(default, float) and type(setting) is int):
                raise self.fail(self.node(node, key), f"agent.{key}",
                                f"must be {type(default).__name__}, got {setting!r}")
        try:
            RafaConfig(**value)
        except ValueError as exc:
            raise self.fail(node, "agent", str(exc)) from None
        return dict(value)


def parse_seeds(value: Any) -> tuple[int, ...]:
    """A list of non-negative ints, or a range string such as '100-119' (both ends included)."""
    if isinstance(value, str):
        first, sep, last = value.partition("-")
        if not (first.strip().isdigit() and (not sep or last.strip().isdigit())):
            raise ValueError(f"seed range must look like '100-119', got {value!r}")
        value = list(range(int(first), int(last or first) + 1))
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a non-empty list of seeds or an 'A-B' range, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise ValueError(f"seeds must be non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"seeds repeat: {value!r}")
    return tuple(value)
