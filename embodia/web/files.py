"""Files the page hands out and takes in: a saved session as one zip, a zip loaded back, saved episodes.

The zip holds exactly chat's ``/save`` format (``memory.jsonl`` + ``world.json``); a zip is read for those
two names only, size-capped, and checked by :func:`agents.chat.read_saved` before any world is built.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

from agents.chat import MEMORY_FILE, WORLD_FILE, ChatSession, read_saved
from tools.episodes import LOG_FILE, VIDEO_FILE

MAX_SAVE_BYTES = 64 * 2**20  # a chat save is a seed, an action trace and memory text: far below this


def save_zip(chat: ChatSession) -> Path:
    """``/save`` into the session folder, then both files zipped beside it for download."""
    folder = chat.save(chat.out_dir / "saved")
    target = chat.out_dir / f"session-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (MEMORY_FILE, WORLD_FILE):
            archive.write(folder / name, name)
    return target


def unpack_save(upload: str | Path, into: Path) -> Path:
    """The folder with ``memory.jsonl`` + ``world.json`` from an uploaded zip (or a bare ``world.json``);
    ValueError says what is wrong with it."""
    upload = Path(upload)
    into.mkdir(parents=True, exist_ok=True)
    if upload.name.endswith(".json"):
        (into / WORLD_FILE).write_bytes(upload.read_bytes()[:MAX_SAVE_BYTES])
    else:
        try:
            with zipfile.ZipFile(upload) as archive:
                names = {i.filename: i for i in archive.infolist()}
                if WORLD_FILE not in names:
                    raise ValueError(f"{upload.name} holds no {WORLD_FILE}: upload a zip made by Save")
                for name in (MEMORY_FILE, WORLD_FILE):
                    if name in names:
                        if names[name].file_size > MAX_SAVE_BYTES:
                            raise ValueError(f"{name} in {upload.name} is over {MAX_SAVE_BYTES >> 20} MB")
                        (into / name).write_bytes(archive.read(name))
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{upload.name} is not a zip made by Save ({exc})") from exc
    try:
        read_saved(into)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from exc
    return into


def episode_folders(roots: list[Path], limit: int = 100) -> list[Path]:
    """Folders holding an episode log (runs, evals, web sessions) under ``roots``, newest first."""
    found: set[Path] = set()
    for root in roots:
        if root.is_dir():
            for depth in ("*", "*/*", "*/*/*", "*/*/*/*"):
                found.update(p.parent for p in root.glob(f"{depth}/{LOG_FILE}"))
    return sorted(found, key=lambda p: (p / LOG_FILE).stat().st_mtime, reverse=True)[:limit]


def episode_video(folder: Path) -> Path | None:
    """The folder's video when it is finished (a live session's video is complete once it closes)."""
    video = folder / VIDEO_FILE
    return video if video.is_file() and video.stat().st_size > 0 else None
