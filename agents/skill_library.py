"""The skill library (after Voyager): mastered skills with a description and an evaluation record, retrieved by
meaning for a new goal.

Voyager keeps every skill that passed its self-verification, keyed by an embedding of its description, and
retrieves the top few for a new task. Here a skill is a learned policy's skill (a name the policy was trained
on, e.g. ``collect stone``) with the checkpoint that runs it; it enters the library when its evaluation passes
the mastery bar (a Wilson lower bound, so 3/3 lucky attempts do not count as mastered), and a later, better
evaluation replaces the record while the history of rates is kept. The curriculum adds to it; the planner and
chat retrieve from it (``retrieve``). Retrieval uses the same sentence embeddings as memory's ``recall``
(``tools.models.embeddings``) with its keyword fallback. The file is one JSON document written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.io import CorruptFileError, atomic_write_json
from tools.models.embeddings import rank
from tools.skills.specs import SKILLS, normalise_skill_name
from tools.stats import wilson_interval

#: A skill is mastered when the Wilson 95 % lower bound of its success rate reaches this.
MASTERY_LOWER_BOUND = 0.6
FORMAT = "embodia.skill_library/1"


def wilson_lower(successes: int, attempts: int) -> float:
    """Lower end of the Wilson 95 % interval of a success rate."""
    return wilson_interval(successes, attempts)[0] if attempts else 0.0


@dataclass
class SkillRecord:
    """One mastered skill: what it does, who runs it, and how well it did when last evaluated."""

    name: str
    description: str
    policy: str
    successes: int
    attempts: int
    round: int = 0
    env_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0

    @property
    def lower_bound(self) -> float:
        return wilson_lower(self.successes, self.attempts)

    def text(self) -> str:
        """What retrieval embeds: the name and the description."""
        return f"{self.name}: {self.description}"


def describe_skill(name: str) -> str:
    """The library's description of a Crafter skill: its spec line plus what it needs and gives."""
    spec = SKILLS.get(normalise_skill_name(name))
    if spec is None:
        return name
    parts = [spec.description]
    if spec.requires:
        parts.append("needs " + ", ".join(f"{n} {k}" for k, n in spec.requires.items()))
    if spec.gives:
        parts.append("gives " + ", ".join(f"{k}" for k in spec.gives))
    return "; ".join(parts)


class SkillLibrary:
    """Mastered skills, persisted as ``skill_library.json``, retrievable by meaning."""

    def __init__(self, records: list[SkillRecord] | None = None, path: Path | None = None) -> None:
        self.records: dict[str, SkillRecord] = {r.name: r for r in records or []}
        self.path = path

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, name: object) -> bool:
        return name in self.records

    def consider(
        self, name: str, policy: str, successes: int, attempts: int, *, round: int = 0, env_steps: int = 0,
        description: str | None = None,
    ) -> bool:
        """Record an evaluation; the skill is (re)stored if mastered and at least as good as the stored record.

        Returns True when the library now holds this evaluation for ``name``.
        """
        entry = {"round": round, "successes": successes, "attempts": attempts, "policy": policy}
        old = self.records.get(name)
        bound = wilson_lower(successes, attempts)
        if bound < MASTERY_LOWER_BOUND or (old is not None and bound < old.lower_bound):
            if old is not None:
                old.history.append(entry)
            return False
        history = [*(old.history if old else []), entry]
        self.records[name] = SkillRecord(
            name=name, description=description or describe_skill(name), policy=policy, successes=successes,
            attempts=attempts, round=round, env_steps=env_steps, history=history)
        return True

    def retrieve(self, goal: str, k: int = 3) -> list[SkillRecord]:
        """The ``k`` mastered skills most related to ``goal`` (a request in plain words)."""
        records = list(self.records.values())
        return [records[i] for i in rank(goal, [r.text() for r in records], k)]

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path or self.path or "skill_library.json")
        return atomic_write_json(target, {"format": FORMAT, "skills": [asdict(r) for r in self.records.values()]})

    @classmethod
    def load(cls, path: str | Path) -> SkillLibrary:
        """Read a library; a missing file is an empty library, a damaged one an error naming the file."""
        path = Path(path)
        if not path.exists():
            return cls(path=path)
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT!r}")
            records = [SkillRecord(**item) for item in raw["skills"]]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptFileError(f"{path}: not a skill library ({exc})") from exc
        return cls(records, path=path)
