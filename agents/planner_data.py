"""Supervised examples for the planner LLM, built from the agent's own episode logs.

Each RAFA decision in an ``episode.jsonl`` becomes one example: the prompt is the exact planner
prompt the agent renders at that decision (``prompts/templates/planner.jinja`` with the goal, the
state text, the options in the agent's order, and the memory it shows: the last transitions and
reflections), the target is the subgoal the agent chose plus its plan as a short rationale.

Examples keep the prompt's *inputs*, so the options can also be shown shuffled (the agent lists
the critic's best first, which a model could learn instead of the state). The memory shown is
rebuilt from the log's ``ActionStep`` records exactly as :class:`~agents.rafa.RafaAgent` builds it
(transition text ``"skill: outcome"``, reflection texts, the config's ``recent_steps`` /
``lessons_shown``); where the log also holds the rendered prompt, the rebuilt one must equal it.
Every example carries the prompt template's version, and a log or dataset made with another
version is refused: a planner tuned on one wording is not evidence about another.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import prompts
from agents.rafa import RafaConfig
from tools.episodes import LOG_FILE, read_log

TEMPLATE = "planner"
TARGET_TEMPLATE = "planner_target"  # the reply to learn (skill, then "Plan: a → b.")


class TraceError(ValueError):
    """A trace or dataset cannot be used: missing fields, another prompt version, nothing to learn from."""


@dataclass
class PlannerExample:
    """One decision: the prompt's inputs, the options shown, and the agent's choice."""

    seed: int
    goal: str
    index: int
    variables: dict[str, Any]  # planner.jinja's inputs: goal, state, options, reflections, recent
    chosen: str
    future: list[str]
    prompt_version: str
    source: str = ""
    tags: list[str] = field(default_factory=list)  # e.g. "contested": the agent would have asked the LLM

    @property
    def options(self) -> list[str]:
        return list(self.variables["options"])

    def messages(self, *, shuffle: bool = False) -> list[dict[str, str]]:
        """The planner prompt; ``shuffle`` reorders the options (fixed per example) so that a model
        cannot learn the critic's ordering instead of the state (the agent lists the best first)."""
        variables = dict(self.variables)
        if shuffle:
            variables["options"] = self.shuffled_options()
        return prompts.render_messages(TEMPLATE, **variables)

    def shuffled_options(self) -> list[str]:
        options = self.options
        key = hashlib.sha256(f"{self.seed}/{self.goal}/{self.index}".encode()).digest()
        random.Random(key).shuffle(options)
        return options

    def target(self, *, rationale: bool = True) -> str:
        """The reply to learn: the skill first (what ``score`` ranks), then the plan it starts."""
        if not rationale:
            return self.chosen
        return prompts.render_text(TARGET_TEMPLATE, chosen=self.chosen, future=self.future)


def check_version(found: str | None, where: str) -> None:
    expected = prompts.version(TEMPLATE)
    if found != expected:
        raise TraceError(f"{where}: made with planner prompt version {found!r}, but prompts/templates/"
                         f"{TEMPLATE}.jinja is now version {expected!r}; rebuild it from episodes collected "
                         f"with the current prompt")


def _need(record: dict[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise TraceError(f"{where}: {record.get('type', 'record')} lacks field {name!r}")
    return record[name]


def examples_from_log(path: str | Path, config: RafaConfig | None = None, *,
                      successful_only: bool = True) -> list[PlannerExample]:
    """Examples from one ``episode.jsonl`` (decisions with at least two options; an LLM-free choice
    among one option teaches nothing). Failed episodes are skipped unless ``successful_only`` is off."""
    config = config or RafaConfig()
    path = Path(path)
    records = read_log(path)
    summaries = [r for r in records if r.get("type") == "summary"]
    if successful_only and not (summaries and summaries[-1].get("success")):
        return []
    resets = [r for r in records if r.get("type") == "reset"]
    if not resets:
        raise TraceError(f"{path}: no 'reset' record, so the world seed (the split key) is unknown")
    seed = int(_need(resets[0], "seed", f"{path}"))
    transitions: list[str] = []
    reflections: list[str] = []
    examples = []
    for number, record in enumerate(records, start=1):
        where = f"{path}:{number}"
        kind = record.get("type")
        if kind == "ActionStep":
            skill = _need(record, "arguments", where).get("skill")
            transitions.append(f"{skill}: {_need(record, 'outcome', where)}")
            if record.get("reflection"):
                reflections.append(record["reflection"])
        elif kind == "PlanningStep":
            if record.get("prompt_version"):  # logs that store the version are checked against it
                check_version(record["prompt_version"], where)
            candidates = _need(record, "candidates", where)
            chosen = _need(record, "chosen", where)
            if chosen is None or len(candidates) < 2:
                continue
            options = [_need(c, "future", where)[0] for c in candidates]
            critics = sorted((_need(c, "critic", where) for c in candidates), reverse=True)
            variables = {
                "goal": _need(record, "goal", where), "state": _need(record, "state", where), "options": options,
                "reflections": reflections[-config.lessons_shown:] if config.lessons_shown > 0 else [],
                "recent": transitions[-config.recent_steps:] if config.recent_steps > 0 else [],
            }
            if record.get("prompt") and prompts.render_messages(TEMPLATE, **variables) != record["prompt"]:
                raise TraceError(f"{where}: the logged planner prompt differs from the one rebuilt from the log; "
                                 f"was the episode run with other recent_steps/lessons_shown than {config}?")
            tags = ["contested"] if critics[0] - critics[1] <= config.llm_weight else []
            examples.append(PlannerExample(seed, variables["goal"], int(_need(record, "index", where)), variables,
                                           chosen["future"][0], list(chosen["future"]),
                                           prompts.version(TEMPLATE), str(path), tags))
    return examples


def load_examples(sources: Iterable[str | Path], config: RafaConfig | None = None, *,
                  successful_only: bool = True) -> list[PlannerExample]:
    """Examples from episode folders (searched recursively for ``episode.jsonl``) and/or dataset
    ``.jsonl`` files written by :func:`save_examples`. Raises `TraceError` when nothing usable is found."""
    examples: list[PlannerExample] = []
    for source in map(Path, sources):
        if source.is_file() and source.name != LOG_FILE:
            examples.extend(read_examples(source))
            continue
        logs = [source] if source.is_file() else sorted(source.rglob(LOG_FILE))
        if not logs:
            raise TraceError(f"{source}: no {LOG_FILE} found (expected episode folders, e.g. from `embodia eval "
                             f"evals/suites/planner-traces.yaml --llm none --split train --out runs/traces/x`)")
        for log in logs:
            examples.extend(examples_from_log(log, config, successful_only=successful_only))
    if not examples:
        raise TraceError(f"no planner decisions with two or more options in {', '.join(map(str, sources))}"
                         + (" (only successful episodes are used)" if successful_only else ""))
    return examples


def save_examples(examples: Sequence[PlannerExample], path: str | Path) -> Path:
    """Write examples as JSONL (temp file + rename), the provenance of a trained adapter."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(asdict(e)) + "\n" for e in examples), encoding="utf-8")
    tmp.replace(path)
    return path


def read_examples(path: str | Path) -> list[PlannerExample]:
    """Read a dataset JSONL, refusing examples of another prompt version or with missing fields."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        raw = json.loads(line)
        check_version(raw.get("prompt_version"), where)
        try:
            examples.append(PlannerExample(**raw))
        except TypeError as exc:
            raise TraceError(f"{where}: not a planner example ({exc})") from exc
    return examples


def split_by_seed(examples: Sequence[PlannerExample], heldout_seeds: Iterable[int] | None = None,
                  heldout_fraction: float = 0.2) -> tuple[list[PlannerExample], list[PlannerExample]]:
    """(train, held-out): whole worlds are held out, so no held-out state was seen in training.
    Default held-out seeds: the highest ``heldout_fraction`` of the distinct seeds (at least one)."""
    seeds = sorted({e.seed for e in examples})
    if heldout_seeds is None:
        heldout_seeds = seeds[len(seeds) - max(1, round(heldout_fraction * len(seeds))):]
    held = set(heldout_seeds)
    train = [e for e in examples if e.seed not in held]
    heldout = [e for e in examples if e.seed in held]
    if not train or not heldout:
        raise TraceError(f"the split by seed left an empty side: seeds {seeds}, held out {sorted(held)}; "
                         f"collect episodes on more seeds")
    return train, heldout
