"""``results.jsonl``: one JSON line per finished episode, appended so that a kill loses at most the line in flight.

Each line is written whole with one ``write`` on an ``O_APPEND`` descriptor and fsync'ed
before the episode counts as done. A run killed mid-write leaves a last line without its
newline (or with broken JSON); :func:`load_results` cuts it off so ``--resume`` redoes that
episode. A broken line anywhere else, or a record without its ``episode`` key, means the file
was edited or damaged: that is an error naming file and line, never silently skipped, because
skipping would drop an episode from the numbers. (Unlike :func:`tools.io.read_jsonl`, a last line
that parses but lacks its newline also counts as torn: the next append would glue onto it.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tools.io import CorruptFileError, fsync_dir

RESULTS_FILE = "results.jsonl"
#: What every record has, and what resume, progress and reports read from any record.
REQUIRED_KEYS = ("episode", "status", "success")


class ResultsError(CorruptFileError):
    """A results file that cannot be trusted; the message names file and line."""


def load_results(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Every complete record in ``path`` (none if it does not exist).

    With ``repair`` an interrupted last line is cut from the file, so the next append starts clean.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("no newline")
            record = json.loads(line)
        except ValueError:
            if offset + len(line) < len(data):
                raise ResultsError(f"{path}:{number}: corrupt record in the middle of the file") from None
            if repair:
                with path.open("r+b") as handle:
                    handle.truncate(offset)
                    handle.flush()
                    os.fsync(handle.fileno())
            break
        missing = [k for k in REQUIRED_KEYS if k not in record] if isinstance(record, dict) else list(REQUIRED_KEYS)
        if missing or not isinstance(record["episode"], str):
            raise ResultsError(f"{path}:{number}: not an episode record (missing {', '.join(missing) or 'episode'});"
                               " this file was not written by `embodia eval`, or was edited")
        records.append(record)
        offset += len(line)
    return records


class ResultsWriter:
    """Appends records durably: whole line, one write, flush to disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:  # the file's entry in its folder must survive a power cut as well as its lines
            fsync_dir(self.path.parent)

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        written = os.write(self._fd, line)
        if written != len(line):  # a short write would leave half a record: fail loudly, resume redoes it
            raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes")
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
