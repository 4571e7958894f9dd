"""Durable file I/O every layer shares: atomic writes and JSONL reads that survive a killed writer.

An atomic write goes to a temp file in the same folder, is fsync'ed, then renamed over the target
(and the folder fsync'ed), so a reader or a resumed run sees either the old file or the new one,
never half of either. A JSONL file written by appending may end in a torn line when its writer was
killed: :func:`read_jsonl` drops that last line, and refuses a broken line anywhere else, because
skipping it would silently lose a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class CorruptFileError(ValueError):
    """A file that cannot be trusted; the message names the file and the line."""


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where the OS cannot open folders."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via temp file + fsync + rename; the old file stays intact on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text through :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> Path:
    """JSON (with a final newline) through :func:`atomic_write_bytes`."""
    return atomic_write_text(path, json.dumps(data, indent=indent, default=default) + "\n")


def atomic_write_jsonl(path: str | Path, records: Iterable[Any]) -> Path:
    """One JSON document per line through :func:`atomic_write_bytes`."""
    return atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def read_jsonl(path: str | Path, *, missing_ok: bool = False) -> list[Any]:
    """Every complete JSON line of ``path``; a torn last line (killed writer) is dropped.

    Blank lines are skipped. A line that does not parse anywhere but at the end raises
    :class:`CorruptFileError` naming the file and line. With ``missing_ok`` an absent file reads as [].
    """
    path = Path(path)
    if missing_ok and not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break  # the interrupted final write; everything before it is intact
            raise CorruptFileError(f"{path}:{number}: corrupt JSON line in the middle of the file") from None
    return records
