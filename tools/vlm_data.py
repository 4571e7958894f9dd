"""Frames paired with what they show, for the VLM built here (LLaVA-style, DESIGN §5 Perception).

Crafter draws everything a player knows on the 64x64 frame: the 9x7 local view (one 7-pixel tile per cell)
and, below it, the status bar (two rows of item icons with their counts). So the env's privileged state,
cut to what the frame shows, labels every frame for free: the per-cell classes of the view, the 16
inventory counts (vitals included), daylight, facing and sleeping. :class:`FrameReading` is that content
in one type, whichever reads it (the truth here, the vision encoder in ``agents.vision``); its text and its
question-answer pairs are the same for both, so the planner and chat see one format.

``python -m tools.vlm_data --out data/vlm-frames --worlds 40`` collects frames from real episodes driven by
the scripted skills with random actions in between (so inventories, stations, night and creatures occur).
Storage: one safetensors file of arrays (no pickle).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from tools.envs.crafter import (
    ACTION_NAMES,
    DIRECTIONS,
    ITEM_NAMES,
    SEMANTIC_NAMES,
    VITALS,
    CrafterEnv,
    daylight_phase,
    direction_words,
)

FRAME_SHAPE: tuple[int, int, int] = (64, 64, 3)
VIEW_COLS, VIEW_ROWS, TILE = 9, 7, 7  # the local view: 9 x 7 tiles of 7 pixels; the status bar is 2 tile rows below
NUM_CLASSES = max(SEMANTIC_NAMES) + 1  # 0 = outside the world, 1-12 materials, 13-18 creatures (player 13)
MAX_COUNT = 9
#: Facing as a class: the player sprite shows it.
FACINGS: tuple[tuple[int, int], ...] = ((0, -1), (0, 1), (-1, 0), (1, 0))
#: What a reading reports as seen (grass, sand and path are everywhere; the player is the centre).
SEEN = ("water", "stone", "tree", "coal", "iron", "diamond", "lava", "table", "furnace",
        "cow", "zombie", "skeleton", "plant", "arrow")
ITEMS = tuple(n for n in ITEM_NAMES if n not in VITALS)
TRAIN_WORLDS, HELDOUT_WORLDS = 10_000, 20_000  # first seed of each: far from every suite's seeds


class FrameShapeError(ValueError):
    """A frame that is not a 64x64 RGB uint8 Crafter observation."""


def check_frame(frame: np.ndarray) -> np.ndarray:
    """The frame as uint8 HxWx3, or a clear error naming the shape that was given."""
    frame = np.asarray(frame)
    if frame.shape != FRAME_SHAPE:
        raise FrameShapeError(f"the vision encoder reads {FRAME_SHAPE[0]}x{FRAME_SHAPE[1]} RGB frames "
                              f"(shape {FRAME_SHAPE}, Crafter's observation); got shape {frame.shape}")
    return frame.astype(np.uint8, copy=False)


@dataclass(frozen=True)
class FrameReading:
    """What one frame shows: inventory (vitals included), the 7x9 view's classes, light, facing, sleeping."""

    inventory: dict[str, int]
    cells: np.ndarray  # (7, 9) semantic ids, row = y (north at the top), col = x
    daylight: float
    facing: tuple[int, int]
    sleeping: bool = False
    extra: dict = field(default_factory=dict)  # e.g. the reader's confidence

    def visible(self) -> dict[str, tuple[int, int]]:
        """Nearest (dx, dy) of each seen kind (as ``CrafterEnv.visible_things``, over the frame's view only)."""
        nearest: dict[str, tuple[int, int]] = {}
        for y in range(VIEW_ROWS):
            for x in range(VIEW_COLS):
                name = SEMANTIC_NAMES.get(int(self.cells[y, x]), "")
                if name not in SEEN:
                    continue
                dx, dy = x - VIEW_COLS // 2, y - VIEW_ROWS // 2
                best = nearest.get(name)
                if best is None or (abs(dx) + abs(dy), dy, dx) < (abs(best[0]) + abs(best[1]), best[1], best[0]):
                    nearest[name] = (dx, dy)
        return nearest

    def within(self, radius: int) -> set[str]:
        """Names of every class within ``radius`` tiles (Chebyshev) of the player, as far as the view reaches."""
        cy, cx = VIEW_ROWS // 2, VIEW_COLS // 2
        window = self.cells[max(0, cy - radius): cy + radius + 1, max(0, cx - radius): cx + radius + 1]
        return {SEMANTIC_NAMES[int(i)] for i in np.unique(window) if int(i) in SEMANTIC_NAMES} - {"player"}

    def facing_tile(self) -> str:
        dx, dy = self.facing
        cell = int(self.cells[VIEW_ROWS // 2 + dy, VIEW_COLS // 2 + dx])
        return SEMANTIC_NAMES.get(cell, "edge of the world")

    def nearby_text(self) -> str:
        things = sorted(self.visible().items(), key=lambda kv: (abs(kv[1][0]) + abs(kv[1][1]), kv[0]))
        return ", ".join(f"{name} {abs(dx) + abs(dy)} step{'s' if abs(dx) + abs(dy) != 1 else ''} "
                         f"{direction_words(dx, dy)}" for name, (dx, dy) in things) or "only grass"

    def items_text(self) -> str:
        return ", ".join(f"{n} {self.inventory[n]}" for n in ITEMS if self.inventory.get(n, 0) > 0) or "empty"

    def vitals_text(self) -> str:
        return ", ".join(f"{n} {self.inventory.get(n, 0)}/9" for n in VITALS)

    def describe(self, achievements: list[str] | None = None) -> str:
        """The planner's state text in ``CrafterEnv.describe``'s format, from the frame (plus remembered
        achievements, which no frame shows)."""
        phase = daylight_phase(self.daylight) + (", sleeping" if self.sleeping else "")
        return "\n".join([
            f"Inventory: {self.items_text()}.",
            f"Vitals: {self.vitals_text()}.",
            f"Time: {phase}. Facing {DIRECTIONS[self.facing]}: {self.facing_tile()}.",
            f"Nearby: {self.nearby_text()}.",
            f"Achievements: {', '.join(achievements or []) or 'none yet'}.",
        ])


def truth(env: CrafterEnv) -> FrameReading:
    """The privileged state cut to what the current frame shows: the label of a frame."""
    sem = env.semantic
    (px, py), (w, h) = env.player_pos, sem.shape
    cells = np.zeros((VIEW_ROWS, VIEW_COLS), np.int64)
    for y in range(VIEW_ROWS):
        for x in range(VIEW_COLS):
            wx, wy = px + x - VIEW_COLS // 2, py + y - VIEW_ROWS // 2
            if 0 <= wx < w and 0 <= wy < h:
                cells[y, x] = int(sem[wx, wy])
    inventory = {n: min(int(v), MAX_COUNT) for n, v in env.inventory.items()}
    return FrameReading(inventory, cells, env.daylight, env.facing, bool(env.player.sleeping))


# --- question-answer pairs ------------------------------------------------------------------------------------
def answer(reading: FrameReading, kind: str, subject: str = "") -> str:
    """The answer to question ``kind`` about ``subject`` (see :func:`question`), from the reading."""
    if kind == "see":
        return f"I see {reading.nearby_text()}; I face {reading.facing_tile()}."
    if kind == "count":
        return str(reading.inventory.get(subject, 0))
    if kind == "inventory":
        return reading.items_text()
    if kind == "vitals":
        return reading.vitals_text()
    if kind == "near":
        offset = reading.visible().get(subject)
        if offset is None:
            return "no"
        dx, dy = offset
        return f"yes, {abs(dx) + abs(dy)} steps {direction_words(dx, dy)}"
    if kind == "facing":
        return reading.facing_tile()
    if kind == "time":
        return daylight_phase(reading.daylight)
    raise ValueError(f"unknown question kind {kind!r}")


QUESTIONS: dict[str, tuple[str, ...]] = {
    "see": ("What do you see?", "Describe what is around you.", "look"),
    "count": ("How much {s} do you have?", "How many {s} do you have?"),
    "inventory": ("What is in your inventory?", "What do you have?"),
    "vitals": ("How are your vitals?", "How are your health, food, drink and energy?"),
    "near": ("Is there a {s} nearby?", "Do you see a {s}?", "Where is the nearest {s}?"),
    "facing": ("What are you facing?", "What is in front of you?"),
    "time": ("Is it day or night?",),
}


def question(kind: str, subject: str = "", variant: int = 0) -> str:
    forms = QUESTIONS[kind]
    return forms[variant % len(forms)].format(s=subject.replace("_", " "))


def parse_question(text: str) -> tuple[str, str] | None:
    """(kind, subject) of a question in one of the trained forms, or None (the VLM still answers it)."""
    words = text.lower().strip().rstrip("?").replace("_", " ")
    for kind, forms in QUESTIONS.items():
        for form in forms:
            head, _, tail = form.lower().rstrip("?").partition("{s}")
            if "{s}" not in form and words == head:
                return kind, ""
            if "{s}" in form and words.startswith(head) and words.endswith(tail):
                subject = words[len(head): len(words) - len(tail) if tail else None].strip().replace(" ", "_")
                if subject in ITEM_NAMES or subject in SEEN:
                    return kind, subject
    return None


def qa_pairs(reading: FrameReading, rng: random.Random, n: int = 4) -> list[tuple[str, str]]:
    """``n`` (question, answer) pairs about one frame, in the forms the planner and chat ask."""
    pairs = []
    visible = list(reading.visible())
    held = [i for i in ITEM_NAMES if reading.inventory.get(i, 0) > 0]
    for _ in range(n):
        kind = rng.choices(list(QUESTIONS), weights=(2, 4, 1, 1, 2, 1, 1))[0]
        subject = ""
        if kind == "count":
            subject = rng.choice(held) if held and rng.random() < 0.7 else rng.choice(ITEM_NAMES)
        elif kind == "near":
            subject = rng.choice(visible) if visible and rng.random() < 0.5 else rng.choice(SEEN)
        pairs.append((question(kind, subject, rng.randrange(3)), answer(reading, kind, subject)))
    return pairs


# --- the frame set --------------------------------------------------------------------------------------------
@dataclass
class FrameSet:
    """Frames and their labels as arrays: what training and the benchmark read."""

    frames: np.ndarray  # (N, 64, 64, 3) uint8
    inventory: np.ndarray  # (N, 16) int64, crafter item order
    cells: np.ndarray  # (N, 7, 9) int64
    daylight: np.ndarray  # (N,) float32
    facing: np.ndarray  # (N,) int64 index into FACINGS
    sleeping: np.ndarray  # (N,) int64
    world: np.ndarray  # (N,) int64 world seed

    def __len__(self) -> int:
        return len(self.frames)

    def reading(self, i: int) -> FrameReading:
        return FrameReading({n: int(v) for n, v in zip(ITEM_NAMES, self.inventory[i], strict=True)},
                            self.cells[i], float(self.daylight[i]), FACINGS[int(self.facing[i])],
                            bool(self.sleeping[i]))

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        from tools.io import atomic_write_bytes

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({k: np.ascontiguousarray(v) for k, v in vars(self).items()}, str(tmp))
        atomic_write_bytes(path, tmp.read_bytes())
        tmp.unlink()
        return path

    @classmethod
    def load(cls, path: str | Path) -> FrameSet:
        from safetensors.numpy import load_file

        if not Path(path).is_file():
            raise FileNotFoundError(f"no frame set at {path}: make one with `python -m tools.vlm_data --out {path}`")
        return cls(**load_file(str(path)))


#: Skills the collector drives (weights favour the early tech tree, where most of an agent's frames are).
_DRIVE = {"collect wood": 6, "place table": 2, "make wood_pickaxe": 2, "make wood_sword": 1, "collect stone": 3,
          "make stone_pickaxe": 1, "collect coal": 2, "place furnace": 1, "collect iron": 1, "drink water": 2,
          "eat cow": 2, "collect sapling": 1, "place plant": 1, "place stone": 1, "sleep": 1, "explore": 2}


class _Recorder(gym.Wrapper):
    """Keeps every ``every``-th frame with its truth while skills and random actions drive the env."""

    def __init__(self, env: CrafterEnv, every: int, out: list) -> None:
        super().__init__(env)
        self.every, self.out, self.count = every, out, 0

    def step(self, action):
        result = self.env.step(action)
        self.count += 1
        if self.count % self.every == 0:
            self.out.append((result[0]["image"], truth(self.env.unwrapped)))
        return result


def collect(worlds: list[int], steps: int = 1500, every: int = 3, seed: int = 0) -> FrameSet:
    """Frames from ``steps`` env steps in each world of ``worlds`` (skills, then 0-15 random actions)."""
    from tools.skills.crafter import SKILLS, run_skill

    rng = random.Random(seed)
    rows: list[tuple[np.ndarray, FrameReading, int]] = []
    names, weights = zip(*[(n, w) for n, w in _DRIVE.items() if n in SKILLS], strict=True)
    for world in worlds:
        kept: list = []
        env = _Recorder(CrafterEnv(seed=world, length=steps + 200), every, kept)
        env.reset(seed=world)
        kept.append((env.unwrapped.observe()["image"], truth(env.unwrapped)))
        done, life = False, 0
        while env.count < steps:
            if done:  # the player died: the same world again from a new start, until the steps are spent
                life += 1
                env.reset(seed=world + 1_000_000 * life)
                done = False
                kept.append((env.unwrapped.observe()["image"], truth(env.unwrapped)))
            result = run_skill(env, rng.choices(names, weights)[0], budget=min(80, steps - env.count))
            done = bool(result.data.get("terminated") or result.data.get("truncated"))
            for _ in range(rng.randrange(16)):
                if done or env.count >= steps:
                    break
                _, _, terminated, truncated, _ = env.step(rng.randrange(len(ACTION_NAMES)))
                done = terminated or truncated
        rows += [(frame, reading, world) for frame, reading in kept]
    return FrameSet(
        frames=np.stack([r[0] for r in rows]).astype(np.uint8),
        inventory=np.array([[r[1].inventory[n] for n in ITEM_NAMES] for r in rows], np.int64),
        cells=np.stack([r[1].cells for r in rows]).astype(np.int64),
        daylight=np.array([r[1].daylight for r in rows], np.float32),
        facing=np.array([FACINGS.index(r[1].facing) for r in rows], np.int64),
        sleeping=np.array([r[1].sleeping for r in rows], np.int64),
        world=np.array([r[2] for r in rows], np.int64),
    )


def iter_qa(frames: FrameSet, seed: int = 0, per_frame: int = 2) -> Iterator[tuple[int, str, str]]:
    """(frame index, question, answer) over the set, ``per_frame`` questions each, shuffled by ``seed``."""
    rng = random.Random(seed)
    order = list(range(len(frames)))
    rng.shuffle(order)
    for i in order:
        for q, a in qa_pairs(frames.reading(i), rng, per_frame):
            yield i, q, a


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Collect Crafter frames labelled with what they show.")
    parser.add_argument("--out", type=Path, required=True, help="folder for train.safetensors, heldout.safetensors")
    parser.add_argument("--worlds", type=int, default=40, help="training worlds (seeds from 10000)")
    parser.add_argument("--heldout-worlds", type=int, default=8, help="held-out worlds (seeds from 20000)")
    parser.add_argument("--steps", type=int, default=1500, help="env steps per world")
    parser.add_argument("--every", type=int, default=3, help="keep every N-th frame")
    args = parser.parse_args(argv)
    for name, first, count in (("train", TRAIN_WORLDS, args.worlds), ("heldout", HELDOUT_WORLDS, args.heldout_worlds)):
        frames = collect(list(range(first, first + count)), args.steps, args.every)
        path = frames.save(args.out / f"{name}.safetensors")
        print(f"{name}: {len(frames)} frames from {count} worlds -> {path}")


if __name__ == "__main__":
    main()
