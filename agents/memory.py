"""Episodic memory of a run: transitions, predictions, reflections, notes.

RAFA's "learn" step builds its posterior from this store: which steps were taken,
what the model predicted, what really happened, and the lessons drawn from
mismatches. It lives in RAM during a run; ``save`` writes the whole store as JSONL
(one record a line) atomically, on a chat's ``/save``, so a chat can resume later and a
save killed half-way leaves the previous file whole (``tools.io``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.base import Tool, ToolResult
from tools.io import atomic_write_jsonl, read_jsonl
from tools.models.embeddings import rank

RecordKind = Literal["goal", "transition", "reflection", "note"]


@dataclass
class MemoryRecord:
    """One remembered event; ``data`` carries structured details (prediction, outcome, …)."""

    kind: RecordKind
    text: str
    step: int = 0
    goal: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Memory:
    """An append-only list of :class:`MemoryRecord` with simple retrieval."""

    def __init__(self, records: Iterable[MemoryRecord] = ()) -> None:
        self.records: list[MemoryRecord] = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def add(self, kind: RecordKind, text: str, *, step: int = 0, goal: str = "", **data: Any) -> MemoryRecord:
        record = MemoryRecord(kind=kind, text=text, step=step, goal=goal, data=data)
        self.records.append(record)
        return record

    def of_kind(self, kind: RecordKind) -> list[MemoryRecord]:
        return [r for r in self.records if r.kind == kind]

    def recent(self, kind: RecordKind, n: int) -> list[MemoryRecord]:
        return self.of_kind(kind)[-n:] if n > 0 else []

    def recall(self, query: str, k: int = 3, *, semantic: bool = True) -> list[MemoryRecord]:
        """The ``k`` records most related to ``query``, newest first among ties.

        By meaning (all-MiniLM-L6-v2 sentence embeddings, ``tools.models.embeddings``) when the packaged
        encoder is installed, so "chop a tree" finds the wood records; by shared words otherwise, or with
        ``semantic=False`` (cheap and deterministic, good enough for skill names and item words).
        """
        return [self.records[i] for i in rank(query, [r.text for r in self.records], k, semantic=semantic)]

    # --- persistence ---
    def save(self, path: str | Path) -> Path:
        """Write all records as JSONL atomically (temp file, fsync, rename: ``tools.io``)."""
        return atomic_write_jsonl(path, (asdict(record) for record in self.records))

    @classmethod
    def load(cls, path: str | Path) -> Memory:
        """Read a JSONL memory; a torn last line (killed writer) is skipped, every other line must be a record.

        Raises:
            ValueError: naming the file and the line that is not a memory record.
        """
        records = []
        for number, raw in enumerate(read_jsonl(path), start=1):
            try:
                records.append(MemoryRecord(**raw))
            except TypeError as exc:
                raise ValueError(f"{path}: record {number} is not a memory record ({exc})") from exc
        return cls(records)


class RecallTool(Tool):
    """``recall(query)``: the planner's window into memory (DESIGN §4)."""

    name = "recall"
    description = "Retrieve remembered steps, reflections and notes related to a query."
    inputs = {"query": {"type": "string", "description": "words to look for, e.g. 'table'"}}

    def __init__(self, memory: Memory) -> None:
        super().__init__()
        self.memory = memory

    def forward(self, query: str) -> ToolResult:
        found = self.memory.recall(query)
        text = "\n".join(f"[{r.kind}] {r.text}" for r in found) or f"nothing remembered about {query!r}"
        return ToolResult(ok=True, text=text, data={"records": [asdict(r) for r in found]})
