"""Language motions: the fine-grained phrase of each step ("move left", "face the tree", "move arm forward and
close gripper"), derived automatically from actions and state, no human labels (RT-H, Belkhale et al. 2024,
https://arxiv.org/abs/2403.01823, §3).

RT-H maps each action dimension to a direction word, drops the dimensions below a small-action cutoff and
joins the rest by magnitude. Here:

* **Crafter**: the phrase of the primitive relative to the tile it targets. A move onto a walkable free tile
  is ``"move left"``; a move into anything else only turns the player (crafter's ``Player.move``), so it is
  ``"face the tree"``; the other primitives name themselves (``"do"``, ``"place table"``,
  ``"make wood pickaxe"``, ``"sleep"``, ``"noop"``). The targeted tile is read from the world
  (:func:`crafter_motion_in_env`, what the collectors use) or, for a dataset already written, from the frame
  before the action (:func:`crafter_motion_from_frame`: the tile's pixels against crafter's own textures lit
  at the row's daylight), so ``data/crafter-skills`` gets the column without being recollected
  (:func:`fill_language_motion`).
* **Meta-World** (dx, dy, dz, gripper effort): a word per end-effector axis whose magnitude is above
  ``cutoff`` and at least ``dominance`` x the largest, ordered by magnitude, plus ``"open/close gripper"``
  when the gripper command changes sign (:func:`metaworld_motion`).

The dataset producers (``tools/collect_crafter.py``, ``tools/collect_metaworld.py``) store the phrase per step
in the ``language_motion`` column (``tools.episode_dataset.LANGUAGE_MOTION``); RT-H (``vla/rth``) learns to
predict it and corrections typed in chat are phrases of the same vocabulary.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tools.episode_dataset import ACTION, EPISODE_INDEX, LANGUAGE_MOTION, OBS_IMAGE, OBS_STATE, decode_png, shard_files
from tools.io import atomic_write_bytes

#: Crafter move actions and the (dx, dy) they face (north is up, negative y).
MOVES: dict[str, tuple[int, int]] = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1),
                                     "move_down": (0, 1)}
#: What the player walks onto (crafter's ``Player.walkable``: the walkable materials and lava).
WALKABLE: frozenset[str] = frozenset({"grass", "sand", "path", "lava"})
#: Things a move can be blocked by, i.e. what ``"face the ..."`` names ("edge": outside the world).
FACEABLE: tuple[str, ...] = ("water", "stone", "tree", "coal", "iron", "diamond", "table", "furnace", "plant",
                             "cow", "zombie", "skeleton", "arrow", "player", "edge")
_OTHER: tuple[str, ...] = ("noop", "do", "sleep", "place stone", "place table", "place furnace", "place plant",
                           "make wood pickaxe", "make stone pickaxe", "make iron pickaxe", "make wood sword",
                           "make stone sword", "make iron sword")
#: Every Crafter motion phrase, in a fixed order (RT-H's motion vocabulary for this env).
CRAFTER_MOTIONS: tuple[str, ...] = (*(f"move {w}" for w in ("left", "right", "up", "down")),
                                    *(f"face the {t}" for t in FACEABLE), *_OTHER)
#: Meta-World axis words: (negative, positive) for dx, dy, dz.
AXIS_WORDS: tuple[tuple[str, str], ...] = (("left", "right"), ("backward", "forward"), ("down", "up"))
#: The Meta-World phrase when no axis is above the cutoff and the gripper does not change.
HOLD = "hold still"


def crafter_motion(action: str, target: str) -> str:
    """The phrase of Crafter primitive ``action`` (an ``ACTION_NAMES`` entry) whose target tile holds ``target``
    (a material, a creature's name, ``"edge"``); only moves read the target."""
    if action in MOVES:
        if target in WALKABLE:
            return f"move {action.removeprefix('move_')}"
        return f"face the {target if target in FACEABLE else 'edge'}"
    return action.replace("_", " ")


def crafter_target(env, direction: tuple[int, int]) -> str:
    """What the tile next to the player of ``env`` (a ``CrafterEnv``) in ``direction`` holds: a creature's name
    when one stands there, else the material (``"edge"`` outside the world)."""
    world, player = env.world, env.player
    x, y = int(player.pos[0]) + direction[0], int(player.pos[1]) + direction[1]
    if not (0 <= x < world.area[0] and 0 <= y < world.area[1]):
        return "edge"
    material, obj = world[x, y]
    return type(obj).__name__.lower() if obj is not None else str(material)


def crafter_motion_in_env(env, action: int) -> str:
    """The phrase of ``action`` (an index) in ``env``'s current state, read from the world: call it before
    ``env.step(action)``."""
    from tools.envs.crafter import ACTION_NAMES

    name = ACTION_NAMES[int(action)]
    return crafter_motion(name, crafter_target(env.unwrapped, MOVES[name]) if name in MOVES else "")


# --- Crafter motions from frames ---------------------------------------------------------------
#: The observation's local view: 9 x 7 tiles around the player (crafter ``view=(9, 9)``, 2 rows of items).
GRID, PLAYER_TILE = (9, 7), (4, 3)


def _light(texture: np.ndarray, daylight: float) -> np.ndarray:
    """Crafter's ``LocalView._light`` without its night noise: what a texture looks like at ``daylight``."""
    from PIL import Image, ImageEnhance

    rgb = texture.astype(np.float64)
    night = np.asarray(ImageEnhance.Color(Image.fromarray(texture.astype(np.uint8))).enhance(0.4), np.float64)
    night = 0.5 * night + 0.5 * np.array([0, 16, 64], np.float64)
    return daylight * rgb + (1 - daylight) * night


@functools.lru_cache(maxsize=4)
def _textures(unit: int) -> tuple[tuple[str, ...], np.ndarray]:
    """(label per template, (K, unit, unit, 3) day-lit templates) from crafter's own assets: each material,
    and each creature drawn over grass and over sand the way crafter blends it (alpha)."""
    import crafter
    from crafter.engine import Textures

    textures = Textures(Path(crafter.__file__).parent / "assets")
    labels, images = [], []
    for material in ("water", "grass", "stone", "path", "sand", "tree", "lava", "coal", "iron", "diamond",
                     "table", "furnace"):
        labels.append(material)
        images.append(textures.get(material, (unit, unit))[..., :3].astype(np.float64))
    creatures = {"cow": ("cow",), "zombie": ("zombie",), "skeleton": ("skeleton",), "plant": ("plant", "plant-ripe"),
                 "arrow": ("arrow-left", "arrow-right", "arrow-up", "arrow-down")}
    for label, names in creatures.items():
        for name in names:
            sprite = textures.get(name, (unit, unit)).astype(np.float64)
            for ground in ("grass", "sand", "path"):
                base = textures.get(ground, (unit, unit))[..., :3].astype(np.float64)
                alpha = sprite[..., 3:] / 255 if sprite.shape[-1] == 4 else np.ones_like(base[..., :1])
                labels.append(label)
                images.append(np.floor(255 * (alpha * sprite[..., :3] / 255 + (1 - alpha) * base / 255)))
    # crafter's textures are stored transposed (x, y); the observation is (row=y, col=x)
    return tuple(labels), np.stack([image.transpose(1, 0, 2) for image in images])


def frame_tile(image: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """The pixels of view tile ``(x, y)`` (0..8, 0..6) of a Crafter observation ``(H, W, 3)``."""
    unit = image.shape[1] // GRID[0]
    x, y = tile
    return image[y * unit:(y + 1) * unit, x * unit:(x + 1) * unit].astype(np.float64)


def classify_tile(image: np.ndarray, tile: tuple[int, int], daylight: float) -> str:
    """What view tile ``tile`` of ``image`` shows: the nearest of crafter's textures lit at ``daylight``."""
    unit = image.shape[1] // GRID[0]
    labels, templates = _textures(unit)
    lit = np.stack([_light(t, daylight) for t in templates]) if daylight < 1 else templates
    distance = np.square(lit - frame_tile(image, tile)[None]).mean(axis=(1, 2, 3))
    return labels[int(distance.argmin())]


def crafter_motion_from_frame(image: np.ndarray, action: int, daylight: float = 1.0) -> str:
    """The phrase of ``action`` read from the observation ``image`` it was taken in (no world needed)."""
    from tools.envs.crafter import ACTION_NAMES

    name = ACTION_NAMES[int(action)]
    if name not in MOVES:
        return crafter_motion(name, "")
    dx, dy = MOVES[name]
    return crafter_motion(name, classify_tile(image, (PLAYER_TILE[0] + dx, PLAYER_TILE[1] + dy), daylight))


# --- Meta-World ---------------------------------------------------------------------------------
def metaworld_motion(action: Sequence[float], previous: Sequence[float] | None = None, cutoff: float = 0.2,
                     dominance: float = 0.5) -> str:
    """The phrase of a Meta-World action (dx, dy, dz, gripper effort in [-1, 1]).

    Args:
        action: this step's action.
        previous: the step before's action (None at an episode's start: the gripper starts open).
        cutoff: axes with ``|a| < cutoff`` are small actions and dropped.
        dominance: axes below ``dominance`` x the largest magnitude are dropped too (the dominant ones stay).
    """
    a = np.asarray(action, np.float64)
    magnitude = np.abs(a[:3])
    keep = [i for i in np.argsort(-magnitude, kind="stable")
            if magnitude[i] >= cutoff and magnitude[i] >= dominance * magnitude.max()]
    words = [AXIS_WORDS[i][int(a[i] > 0)] for i in keep]
    parts = [f"move arm {' and '.join(words)}"] if words else []
    before = -1.0 if previous is None else float(np.asarray(previous)[3])
    if (a[3] > 0) != (before > 0):
        parts.append("close gripper" if a[3] > 0 else "open gripper")
    return " and ".join(parts) or HOLD


def metaworld_motions(actions: Sequence[Sequence[float]], **kwargs: float) -> list[str]:
    """The phrase of every step of one episode, in order."""
    return [metaworld_motion(a, actions[i - 1] if i else None, **kwargs) for i, a in enumerate(actions)]


# --- vocabulary and datasets -------------------------------------------------------------------
def closest_motions(text: str, vocabulary: Sequence[str], n: int = 3) -> list[str]:
    """The phrases of ``vocabulary`` nearest to ``text`` (what to offer for a typed motion not in it)."""
    lowered = " ".join(text.lower().split())
    close = difflib.get_close_matches(lowered, list(vocabulary), n=n, cutoff=0.0)
    return close or list(vocabulary)[:n]


def episode_motions(actions: Sequence, images: Sequence[np.ndarray], states: Sequence[np.ndarray]) -> list[str]:
    """The phrases of one episode's steps from its stored actions, frames and states: Meta-World's when the
    actions are vectors, Crafter's (frame-read, daylight from ``observation.state``) when they are indices."""
    if len(actions) and np.ndim(actions[0]) > 0:
        return metaworld_motions(actions)
    from tools.envs.crafter import STATE_FIELDS

    light = STATE_FIELDS.index("daylight")
    return [crafter_motion_from_frame(image, int(a), float(s[light]))
            for a, image, s in zip(actions, images, states, strict=True)]


def fill_language_motion(root: str | Path, on_shard: Callable[[Path], None] | None = None) -> int:
    """Add (or replace) the ``language_motion`` column of every shard under ``root`` from its actions, frames
    and states, each shard rewritten atomically; returns rows labelled. Shards already carrying the column
    are kept as they are, so a killed run resumes where it stopped."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    rows = 0
    for path in shard_files(root):
        table = pq.read_table(path)
        if LANGUAGE_MOTION in table.column_names:
            rows += table.num_rows
            continue
        episodes = table.column(EPISODE_INDEX).to_pylist()
        actions, states = table.column(ACTION).to_pylist(), table.column(OBS_STATE).to_pylist()
        images = [decode_png(b) for b in table.column(OBS_IMAGE).to_pylist()]
        motions: list[str] = []
        start = 0
        for end in [*(i for i in range(1, len(episodes)) if episodes[i] != episodes[i - 1]), len(episodes)]:
            motions += episode_motions(actions[start:end], images[start:end], states[start:end])
            start = end
        table = table.append_column(pa.field(LANGUAGE_MOTION, pa.string()), pa.array(motions, pa.string()))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        rows += table.num_rows
        if on_shard is not None:
            on_shard(path)
    return rows


if __name__ == "__main__":  # python -m tools.language_motion DATASET_DIR: fill the column in place
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m tools.language_motion DATASET_DIR")
    print(f"{fill_language_motion(sys.argv[1], on_shard=lambda p: print(p.name, flush=True))} rows labelled")
