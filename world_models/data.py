"""Crafter episodes for world-model training: collect an expert/random mix, store it, sample sequences.

A world model must see both what competent play does (skills reaching the tech tree) and what
arbitrary actions do (bumping into water, crafting with nothing in hand; never sleeping), or it will imagine every
plan to succeed. So each episode chains randomly chosen feasible scripted skills whose actions are
replaced by uniform-random ones with probability ``epsilon``, interleaved with short purely random
bursts. Each step records which skill drove it (-1 for random actions), which trains the
skill-conditioned action prior used to roll skills forward in imagination.

Storage is ``.npz`` shards (``np.savez_compressed``, read with ``allow_pickle=False``), written
atomically. :func:`load_episodes` also reads the project's parquet episode datasets
(``tools/episode_dataset.py``) when a folder holds those instead (no skill labels there).

World seeds start at 10,000 (held-out bench episodes at 20,000), disjoint from the eval suites'
dev (0-4) and heldout (100-119) seeds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch

from tools.envs.crafter import ACHIEVEMENTS, ACTION_NAMES, CrafterEnv
from tools.skills.crafter import SKILLS, run_skill

#: Skills in a fixed order: the world model's action prior is indexed by position in this tuple.
SKILL_NAMES: tuple[str, ...] = tuple(sorted(SKILLS))
TRAIN_SEED, HELDOUT_SEED = 10_000, 20_000
FIELDS = ("image", "state", "action", "reward", "is_first", "is_terminal", "skill")
#: Long, rarely successful skills that would eat a short episode; the collector leaves them out.
_SKIPPED = frozenset({"collect diamond", "fight skeleton", "eat plant"})
#: Random actions never include "sleep": falling asleep in the open gets the player killed within steps.
_RANDOM_ACTIONS = np.array([i for i, name in enumerate(ACTION_NAMES) if name != "sleep"])
DRIVERS = ("mix", "agent")
_TECH_TREE = frozenset({"collect wood", "place table", "make wood_pickaxe", "make wood_sword", "collect stone",
                        "make stone_pickaxe", "collect coal", "place furnace"})


@dataclass(frozen=True)
class CollectConfig:
    """What to collect.

    Args:
        out: folder for ``shard-XXXXX.npz`` files (+ ``meta.json``).
        episodes: number of episodes.
        steps: env steps per episode (fewer if the player dies).
        seed: world seed of the first episode; episode i uses ``seed + i``.
        epsilon: probability that a skill's action is replaced by a uniform-random one.
        random_burst: probability that the next segment is 4-16 uniform-random actions instead of a skill.
        skill_budget: most env steps one skill call may take.
        episodes_per_shard: episodes stored together in one shard.
        driver: "mix" chains random feasible skills (broad coverage, mostly early deaths); "agent" lets
            the critic-only RAFA agent walk the open-ended goal order, so the data shows the skill mix
            and the deep tech tree the agent actually reaches (actions still swapped with ``epsilon``).
        blind: ("mix" only) probability that the next segment attempts a skill whose requirements are
            missing (a table from one wood, stone without a pickaxe). Feasible skills alone never show
            a failed attempt, so a model trained on them imagines every attempt succeeding.
        blind_budget: most env steps of one such attempt (a failing script would repeat its action, and
            long attempts swamp the data: 12 steps at ``blind`` 0.3 taught the model that tables fail).
    """

    out: Path
    episodes: int = 40
    steps: int = 500
    seed: int = TRAIN_SEED
    epsilon: float = 0.1
    random_burst: float = 0.15
    skill_budget: int = 150
    episodes_per_shard: int = 10
    driver: str = "mix"
    blind: float = 0.0
    blind_budget: int = 3

    def __post_init__(self) -> None:
        if min(self.episodes, self.episodes_per_shard, self.skill_budget, self.blind_budget) < 1 or self.steps < 2:
            raise ValueError(f"CollectConfig: episodes, steps, skill_budget, blind_budget and episodes_per_shard "
                             f"must be positive: {self}")
        if not all(0 <= p <= 1 for p in (self.epsilon, self.random_burst, self.blind)):
            raise ValueError(f"CollectConfig: epsilon, random_burst and blind are probabilities: {self}")
        if self.driver not in DRIVERS:
            raise ValueError(f"CollectConfig.driver must be one of {DRIVERS}, got {self.driver!r}")
        if self.blind and self.driver != "mix":
            raise ValueError(f"CollectConfig.blind needs driver 'mix' (the agent never attempts a skill it cannot do), "
                             f"got driver {self.driver!r}")


class _Recorder(gymnasium.Wrapper):
    """Records every step (whoever drives it) and swaps in random actions with probability epsilon."""

    def __init__(self, env: CrafterEnv, rng: np.random.Generator, epsilon: float) -> None:
        super().__init__(env)
        self.rng, self.epsilon, self.skill = rng, epsilon, -1
        self.rows: dict[str, list] = {k: [] for k in FIELDS}

    def _add(self, obs: dict, reward: float, first: bool, terminal: bool) -> None:
        for key, value in (("image", obs["image"]), ("state", obs["state"]), ("reward", reward),
                           ("is_first", first), ("is_terminal", terminal), ("action", -1), ("skill", -1)):
            self.rows[key].append(value)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._add(obs, 0.0, True, False)
        return obs, info

    def step(self, action):
        skill = self.skill
        if self.rng.random() < self.epsilon:
            action, skill = int(self.rng.choice(_RANDOM_ACTIONS)), -1
        self.rows["action"][-1], self.rows["skill"][-1] = int(action), skill
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._add(obs, float(reward), False, bool(terminated))
        return obs, reward, terminated, truncated, info

    def arrays(self) -> dict[str, np.ndarray]:
        dtypes = {"image": np.uint8, "state": np.float32, "action": np.int16, "reward": np.float32,
                  "is_first": bool, "is_terminal": bool, "skill": np.int16}
        return {k: np.asarray(v, dtypes[k]) for k, v in self.rows.items()}


def _choose_skill(env: CrafterEnv, rng: np.random.Generator) -> str:
    """A feasible skill, favouring the tech tree, achievements not yet unlocked and vitals running low.

    Fights and sleeping in the open kill a weak player, so they wait for health and tiredness.
    """
    inv, ach = env.inventory, env.achievements
    names, weights = [], []
    for name in SKILL_NAMES:
        spec = SKILLS[name]
        if name in _SKIPPED or spec.missing(inv):
            continue
        weight = 3.0 if spec.achievement and ach[spec.achievement] == 0 else 1.0
        weight += 2.0 * (name in _TECH_TREE)
        if (spec.verb == "drink" and inv["drink"] < 5) or (spec.target == "cow" and inv["food"] < 5):
            weight += 6.0
        if spec.verb == "sleep":
            weight = 6.0 if inv["energy"] < 3 else 0.0
        if spec.verb == "fight" and inv["health"] < 7:
            weight = 0.0
        names.append(name)
        weights.append(weight)
    p = np.asarray(weights) / sum(weights)
    return names[int(rng.choice(len(names), p=p))]


def _missing_requirements(env: CrafterEnv) -> list[str]:
    """Skills the player cannot do now for lack of an item (the collector's ``blind`` attempts)."""
    inv = env.inventory
    return [name for name in SKILL_NAMES if name not in _SKIPPED and SKILLS[name].missing(inv)]


def collect_episode(seed: int, cfg: CollectConfig) -> dict[str, np.ndarray]:
    """One episode of ``cfg.steps`` steps in the world ``seed`` (deterministic given the seed)."""
    rng = np.random.default_rng(seed)
    env = CrafterEnv(seed=seed, length=cfg.steps)
    rec = _Recorder(env, rng, cfg.epsilon)
    rec.reset(seed=seed)
    if cfg.driver == "agent":
        _drive_with_agent(rec, cfg)
        return rec.arrays()
    done = False
    while not done:
        left = cfg.steps - env.steps
        if rng.random() < cfg.random_burst:
            rec.skill = -1
            for _ in range(min(left, int(rng.integers(4, 17)))):
                _, _, terminated, truncated, _ = rec.step(int(rng.choice(_RANDOM_ACTIONS)))
                if terminated or truncated:
                    break
        elif rng.random() < cfg.blind and (infeasible := _missing_requirements(env)):
            name = infeasible[int(rng.integers(len(infeasible)))]
            rec.skill = SKILL_NAMES.index(name)
            run_skill(rec, name, budget=left, attempt_budget=cfg.blind_budget)
        else:
            name = _choose_skill(env, rng)
            rec.skill = SKILL_NAMES.index(name)
            run_skill(rec, name, budget=min(SKILLS[name].budget, cfg.skill_budget, left))
        done = env.steps >= cfg.steps or env.player.health <= 0 or rec.rows["is_terminal"][-1]
    return rec.arrays()


def _drive_with_agent(rec: _Recorder, cfg: CollectConfig) -> None:
    """Run the critic-only RAFA agent over every achievement in turn; each step is labelled with its skill."""
    from agents.memory import Memory  # the agent stack only for this driver (it imports world_models itself)
    from agents.rafa import RafaAgent, RafaConfig
    from evals.open_ended import OPEN_GOAL, OpenEnded

    def labelled(env: gymnasium.Env, skill: str, budget: int | None = None):
        rec.skill = SKILL_NAMES.index(skill)
        try:
            return run_skill(env, skill, budget=budget)
        finally:
            rec.skill = -1

    config = RafaConfig(max_env_steps=cfg.steps, max_decisions=200)
    agent = OpenEnded(RafaAgent, cfg.skill_budget * 4, rec, None, Memory(), config)
    agent.inner.tools["act"].runner = labelled
    for _ in agent.run(OPEN_GOAL):
        pass


# --- storage ---
def write_shard(path: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    """Episodes concatenated with an ``episode`` column; written to a temp file, then renamed."""
    arrays = {k: np.concatenate([e[k] for e in episodes]) for k in FIELDS}
    arrays["episode"] = np.concatenate([np.full(len(e["action"]), i, np.int32) for i, e in enumerate(episodes)])
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def collect(cfg: CollectConfig, progress: Iterator[None] | None = None) -> list[Path]:
    """Collect ``cfg.episodes`` episodes into shards; shards already on disk are kept (resumable)."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    meta = {"actions": list(ACTION_NAMES), "skills": list(SKILL_NAMES), "achievements": list(ACHIEVEMENTS),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in cfg.__dict__.items()}}
    (cfg.out / "meta.json").write_text(json.dumps(meta, indent=2))
    paths = []
    for first in range(0, cfg.episodes, cfg.episodes_per_shard):
        path = cfg.out / f"shard-{cfg.seed + first:05d}.npz"
        count = min(cfg.episodes_per_shard, cfg.episodes - first)
        if not path.exists():
            episodes = []
            for i in range(first, first + count):
                episodes.append(collect_episode(cfg.seed + i, cfg))
                if progress is not None:
                    next(progress, None)
            write_shard(path, episodes)
        elif progress is not None:
            for _ in range(count):
                next(progress, None)
        paths.append(path)
    return paths


def load_episodes(root: str | Path) -> list[dict[str, np.ndarray]]:
    """All episodes under ``root`` (npz shards, or a parquet episode dataset) as dicts of arrays."""
    root = Path(root)
    shards = sorted(root.glob("*.npz")) if root.is_dir() else [root]
    if root.is_dir() and not shards and list(root.glob("data/*.parquet")):
        return _load_parquet(root)
    if not shards:
        raise FileNotFoundError(f"no .npz shards or data/*.parquet under {root}; collect with "
                                f"`embodia train world-model --collect N`")
    episodes = []
    for shard in shards:
        with np.load(shard, allow_pickle=False) as data:
            arrays = {k: data[k] for k in (*FIELDS, "episode")}
        bounds = np.flatnonzero(np.diff(arrays["episode"])) + 1
        for piece in np.split(np.arange(len(arrays["episode"])), bounds):
            episodes.append({k: arrays[k][piece] for k in FIELDS})
    return episodes


def _load_parquet(root: Path) -> list[dict[str, np.ndarray]]:
    """Rows of the project's parquet datasets (observation before each action) -> frame arrays."""
    import pyarrow.parquet as pq

    from tools.episode_dataset import ACTION, EPISODE_INDEX, OBS_IMAGE, OBS_STATE, REWARD, decode_png, shard_files

    table = pq.read_table([str(p) for p in shard_files(root)], columns=[EPISODE_INDEX, OBS_IMAGE, OBS_STATE,
                                                                        ACTION, REWARD])
    cols = table.to_pydict()
    index = np.asarray(cols[EPISODE_INDEX])
    episodes = []
    for ep in np.unique(index):
        rows = np.flatnonzero(index == ep)
        n = len(rows)
        reward = np.zeros(n, np.float32)
        reward[1:] = np.asarray(cols[REWARD], np.float32)[rows[:-1]]
        episodes.append({
            "image": np.stack([decode_png(cols[OBS_IMAGE][r]) for r in rows]),
            "state": np.asarray([cols[OBS_STATE][r] for r in rows], np.float32),
            "action": np.asarray(cols[ACTION], np.int16)[rows],
            "reward": reward,
            "is_first": np.arange(n) == 0,
            "is_terminal": np.zeros(n, bool),
            "skill": np.full(n, -1, np.int16),
        })
    return episodes


# --- sampling ---
class SequenceSampler:
    """Uniformly random windows of ``seq_len`` frames from episodes, as (B, T, ...) tensors.

    Every window starts with ``is_first`` set and no previous action, so the model always learns
    to filter from a cold start, exactly how imagination starts from a real history.
    """

    def __init__(self, episodes: list[dict[str, np.ndarray]], seq_len: int, seed: int = 0) -> None:
        self.episodes = [e for e in episodes if len(e["action"]) >= seq_len]
        if not self.episodes:
            longest = max((len(e["action"]) for e in episodes), default=0)
            raise ValueError(f"no episode has {seq_len} frames (longest {longest}); collect longer episodes")
        self.seq_len = seq_len
        starts = np.array([len(e["action"]) - seq_len + 1 for e in self.episodes])
        self.weights = starts / starts.sum()
        self.rng = np.random.default_rng(seed)

    @property
    def frames(self) -> int:
        return sum(len(e["action"]) for e in self.episodes)

    def window(self, episode: int, start: int) -> dict[str, np.ndarray]:
        e, end = self.episodes[episode], start + self.seq_len
        out = {k: e[k][start:end] for k in FIELDS}
        prev = np.concatenate([[-1], e["action"][start:end - 1]]).astype(np.int64)
        first = out["is_first"].copy()
        first[0] = True
        prev[first] = -1
        out["prev_action"], out["is_first"] = prev, first
        return out

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        picks = self.rng.choice(len(self.episodes), size=batch_size, p=self.weights)
        windows = [self.window(i, int(self.rng.integers(len(self.episodes[i]["action"]) - self.seq_len + 1)))
                   for i in picks]
        return {k: torch.from_numpy(np.stack([w[k] for w in windows])) for k in windows[0]}



def main(argv: list[str] | None = None) -> None:
    """``python -m world_models.data --out DIR --episodes N [--driver agent]``: collect episodes into DIR."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    defaults = CollectConfig(out=Path("."))
    parser.add_argument("--out", type=Path, required=True)
    for name in ("episodes", "steps", "seed", "epsilon", "random_burst", "skill_budget", "episodes_per_shard",
                 "blind", "blind_budget"):
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--driver", choices=DRIVERS, default=defaults.driver)
    paths = collect(CollectConfig(**vars(parser.parse_args(argv))))
    print(f"{len(paths)} shards in {paths[0].parent}")


if __name__ == "__main__":
    main()
