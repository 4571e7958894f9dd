"""Crafter demonstrations from the scripted expert skills, as an episode dataset (DESIGN §6).

Each world (one seed) runs a fixed curriculum ``CHAIN`` of skill calls that builds up the
prerequisites as it goes (wood before the table, the table before the pickaxe, ...), so every
skill meets the situations it meets in an agent's run. Every *successful* skill call becomes
one episode whose ``instruction`` is the skill's name; failed calls still move the world on but
are not recorded (they are counted in the card). One world is one shard, named after its seed,
so a rerun skips the worlds already written and the result does not depend on interruptions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium

from tools.envs.crafter import CrafterEnv
from tools.episode_dataset import EpisodeBuffer, shard_summary, write_dataset_card, write_shard
from tools.language_motion import crafter_motion_in_env
from tools.skills.crafter import SKILLS, run_skill
from tools.skills.harness import check_sight

#: The curriculum one world runs, in order; repeated skills are the ones later skills consume.
CHAIN: tuple[str, ...] = (
    *["collect wood"] * 5, "place table", "make wood_pickaxe", "make wood_sword", "collect sapling", "place plant",
    *["collect stone"] * 3, "place stone", "make stone_pickaxe", *["collect wood"] * 2, "make stone_sword",
    "drink water", "eat cow", *["collect stone"] * 4, "place furnace", "collect coal", "collect wood",
    "collect iron", "make iron_pickaxe", "collect coal", "collect iron", "collect wood", "make iron_sword",
    "fight zombie", "explore", "sleep", "collect diamond", "fight skeleton", "eat plant",
)


def feasible_chain(env: CrafterEnv, chain: tuple[str, ...] = CHAIN) -> Iterator[str]:
    """The skills of ``chain`` whose requirements ``env``'s inventory meets when their turn comes, while alive.

    Lazy on purpose: each check reads the world as the previous skill left it.
    """
    for name in chain:
        if env.player.health <= 0:
            return
        if not SKILLS[name].missing(env.inventory):
            yield name


class RecordSteps(gymnasium.Wrapper):
    """Keeps the latest observation and, while ``buffer`` is set, appends (obs, action, reward, language motion)
    per step."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.obs: dict[str, Any] | None = None
        self.buffer: EpisodeBuffer | None = None

    def reset(self, **kwargs: Any):
        self.obs, info = self.env.reset(**kwargs)
        return self.obs, info

    def step(self, action: int):
        before = self.obs
        motion = crafter_motion_in_env(self.env, action) if self.buffer is not None else None  # before the step
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        if self.buffer is not None:
            self.buffer.add(before, action, reward, motion=motion)
        return self.obs, reward, terminated, truncated, info


def run_chain(seed: int, chain: tuple[str, ...] = CHAIN, sight: str = "map") -> tuple[list[EpisodeBuffer], Counter]:
    """Run ``chain`` in the world of ``seed``; returns the successful skill calls and a failure count per skill.

    ``sight`` is what the expert may read (``tools.skills.harness.SIGHTS``): the whole map, or the frame's tiles.
    """
    env = RecordSteps(CrafterEnv(seed=seed))
    env.reset(seed=seed)
    game: CrafterEnv = env.unwrapped  # type: ignore[assignment]
    episodes: list[EpisodeBuffer] = []
    failures: Counter = Counter()

    def call(name: str) -> dict[str, Any]:
        if SKILLS[name].missing(game.inventory):
            failures[name] += 1
            return {}
        env.buffer = EpisodeBuffer(name)
        result = run_skill(env, name, sight=sight)
        if result.ok and len(env.buffer):
            episodes.append(env.buffer)
        elif not result.ok:
            failures[name] += 1
        env.buffer = None
        return {} if result.ok else result.data

    for name in chain:
        if game.player.health <= 0:
            break
        near = call(name).get("missing_near")
        if near:  # the table/furnace is out of reach: place a new one, then retry once
            call(f"place {near}")
            call(name)
    return episodes, failures


@dataclass
class CollectReport:
    out: Path
    episodes: int
    frames: int
    seeds: list[int]
    counts: dict[str, int]
    failures: dict[str, int]


def collect_crafter(
    out: str | Path,
    episodes: int,
    seed: int = 0,
    command: str = "",
    on_world: Callable[[int, int], None] | None = None,
    sight: str = "map",
) -> CollectReport:
    """Collect at least ``episodes`` skill episodes from worlds ``seed, seed+1, ...`` into ``out``.

    Worlds whose shard already exists are read back instead of rerun (safe to rerun after a kill).
    ``on_world(seed, episodes_so_far)`` is called after each world, for progress bars. ``sight="view"``: the
    expert reads only the tiles in the player's frame (a teacher a pixel policy can imitate; ``run_chain``).
    """
    check_sight(sight)
    out = Path(out)
    total, frames, world = 0, 0, seed
    counts: Counter = Counter()
    failures: Counter = Counter()
    seeds: list[int] = []
    while total < episodes:
        shard = out / "data" / f"seed-{world:06d}.parquet"
        if shard.exists():
            rows, names = shard_summary(shard)
            n_episodes = len(names)
            counts.update(names)
        else:
            recorded, failed = run_chain(world, sight=sight)
            failures.update(failed)
            n_episodes = len(recorded)
            counts.update(e.instruction for e in recorded)
            rows = write_shard(shard, recorded, first_episode_index=total)
        total += n_episodes
        frames += rows
        seeds.append(world)
        if on_world is not None:
            on_world(world, total)
        world += 1
    facts = {
        "env": "Crafter (crafter 1.8.3 via tools.envs.crafter.CrafterEnv, 64x64 RGB + 42-dim state, 17 actions)",
        "expert": "tools.skills.crafter.run_skill over tools.collect_crafter.CHAIN; "
        "one successful skill call = one episode",
        "expert sight": "the whole map (privileged)" if sight == "map" else "the 9x7 tiles of the player's frame",
        "seeds": f"{seeds[0]}-{seeds[-1]} (one world per seed, one shard per world)",
        "episodes": total,
        "frames": frames,
        "failed skill calls (not recorded, this run)": dict(sorted(failures.items())) or "none",
        "command": f"`{command}`" if command else "tools.collect_crafter.collect_crafter",
    }
    write_dataset_card(out, "Crafter expert-skill demonstrations", facts, dict(counts))
    return CollectReport(out, total, frames, seeds, dict(counts), dict(failures))
