"""Crafter episodes for world-model training: collect an expert/random mix, store it, sample sequences.

A world model must see both what competent play does (skills reaching the tech tree) and what
arbitrary actions do (bumping into water, crafting with nothing in hand; never sleeping), or it will imagine every
plan to succeed. So each episode chains randomly chosen feasible scripted skills whose actions are
replaced by uniform-random ones with probability ``epsilon``, interleaved with short purely random
bursts. Each step records which skill drove it (-1 for random actions), which trains the
skill-conditioned action prior used to roll skills forward in imagination.

Storage is the project's one episode dataset (``tools/episode_dataset.py``: parquet shards, one row
per frame, with the optional ``skill`` and ``is_terminal`` columns); :func:`load_episodes` reads any
such dataset (expert demonstrations too, without skill labels) back into frames.

The ``agent`` driver needs the agent stack, which this layer may not import (DESIGN §2): it is
``agents.collect.drive_with_agent``, passed in from above as ``drive`` (``embodia collect --for
world-model --driver agent`` composes it).

World seeds start at 10,000 (held-out bench episodes at 20,000), disjoint from the eval suites'
dev (0-4) and heldout (100-119) seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch

from tools.envs.crafter import ACHIEVEMENTS, ACTION_NAMES, CrafterEnv
from tools.episode_dataset import (
    ACTION,
    EPISODE_INDEX,
    IS_TERMINAL,
    NO_ACTION,
    OBS_IMAGE,
    OBS_STATE,
    REWARD,
    SHARD_GLOB,
    SKILL,
    EpisodeBuffer,
    decode_png,
    load_episode_dataset,
    write_dataset_card,
)
from tools.episode_dataset import write_shard as write_dataset_shard
from tools.io import atomic_write_json
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
#: Each episode's ``instruction`` in the dataset: what drove it.
_INSTRUCTIONS = {"mix": "random feasible skills mixed with random actions",
                 "agent": "the critic-only RAFA agent over the open-ended achievement order"}
META_FILE = "meta.json"
_NEEDS_AGENT = ("CollectConfig.driver 'agent' needs the agent's driver passed as drive= "
                "(agents.collect.drive_with_agent; `embodia collect --for world-model --driver agent` passes it)")
_TECH_TREE = frozenset({"collect wood", "place table", "make wood_pickaxe", "make wood_sword", "collect stone",
                        "make stone_pickaxe", "collect coal", "place furnace"})


@dataclass(frozen=True)
class CollectConfig:
    """What to collect.

    Args:
        out: dataset folder: ``data/shard-XXXXX.parquet`` (+ ``meta.json`` and a ``README.md`` card).
        episodes: number of episodes.
        steps: env steps per episode (fewer if the player dies).
        seed: world seed of the first episode; episode i uses ``seed + i``.
        epsilon: probability that a skill's action is replaced by a uniform-random one.
        random_burst: probability that the next segment is 4-16 uniform-random actions instead of a skill.
        skill_budget: most env steps one skill call may take.
        episodes_per_shard: episodes stored together in one shard.
        driver: "mix" chains random feasible skills (broad coverage, mostly early deaths); "agent" lets
            the critic-only RAFA agent walk the open-ended goal order, so the data shows the skill mix
            and the deep tech tree the agent actually reaches (actions still swapped with ``epsilon``;
            the driver itself comes from ``agents.collect``, see the module docstring).
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


class Recorder(gymnasium.Wrapper):
    """Records every step (whoever drives it) and swaps in random actions with probability epsilon.

    A driver sets ``skill`` (an index into :data:`SKILL_NAMES`, -1 for none) before the steps it labels.
    """

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


#: Drives one ``agent`` episode on a reset :class:`Recorder` until it ends.
EpisodeDriver = Callable[[Recorder, CollectConfig], None]


def collect_episode(seed: int, cfg: CollectConfig, drive: EpisodeDriver | None = None) -> dict[str, np.ndarray]:
    """One episode of ``cfg.steps`` steps in the world ``seed`` (deterministic given the seed), as frames.

    ``drive`` plays the ``agent`` driver's episodes (required for it, unused by ``mix``).
    """
    if cfg.driver == "agent" and drive is None:
        raise ValueError(_NEEDS_AGENT)
    rng = np.random.default_rng(seed)
    env = CrafterEnv(seed=seed, length=cfg.steps)
    rec = Recorder(env, rng, cfg.epsilon)
    rec.reset(seed=seed)
    if cfg.driver == "agent":
        drive(rec, cfg)
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


# --- storage: the project's parquet episode dataset (tools/episode_dataset.py) ---
def to_buffer(frames: dict[str, np.ndarray], instruction: str) -> EpisodeBuffer:
    """Frames (observation i, the action after it, the reward that led to it) -> dataset rows.

    A row holds the reward its action earned (the dataset's convention), so frame i+1's reward moves to
    row i; the final frame becomes a row with ``NO_ACTION``.
    """
    buffer = EpisodeBuffer(instruction)
    earned = np.append(frames["reward"][1:], np.float32(0))
    for i in range(len(frames["action"])):
        action = int(frames["action"][i])
        buffer.add({"image": frames["image"][i], "state": frames["state"][i]}, NO_ACTION if action < 0 else action,
                   float(earned[i]), skill=int(frames["skill"][i]), terminal=bool(frames["is_terminal"][i]))
    return buffer


def write_shard(path: Path, episodes: list[dict[str, np.ndarray]], indices: list[int], instruction: str) -> int:
    """Episodes (frames) as one dataset shard, numbered by ``indices`` (their world seeds); returns rows."""
    return write_dataset_shard(path, [to_buffer(e, instruction) for e in episodes], indices=indices)


def shard_plan(cfg: CollectConfig) -> list[tuple[Path, list[int]]]:
    """Every shard of ``cfg``: its path and its world seeds (= episode indices); shards are independent jobs."""
    return [(cfg.out / "data" / f"shard-{cfg.seed + first:05d}.parquet",
             [cfg.seed + i for i in range(first, min(cfg.episodes, first + cfg.episodes_per_shard))])
            for first in range(0, cfg.episodes, cfg.episodes_per_shard)]


def collect_shard(cfg: CollectConfig, path: Path, seeds: list[int], drive: EpisodeDriver | None = None,
                  progress: Iterator[None] | None = None) -> Path:
    """Collect the episodes of ``seeds`` and write them as the shard ``path``."""
    episodes = []
    for seed in seeds:
        episodes.append(collect_episode(seed, cfg, drive))
        if progress is not None:
            next(progress, None)
    write_shard(path, episodes, seeds, _INSTRUCTIONS[cfg.driver])
    return path


def collect(cfg: CollectConfig, progress: Iterator[None] | None = None,
            drive: EpisodeDriver | None = None) -> list[Path]:
    """Collect ``cfg.episodes`` episodes into dataset shards under ``cfg.out``; shards on disk are kept (resumable).

    ``drive`` runs the ``agent`` driver's episodes (see :func:`collect_episode`). Episode indices are world seeds.
    """
    if cfg.driver == "agent" and drive is None:
        raise ValueError(_NEEDS_AGENT)
    meta = {"actions": list(ACTION_NAMES), "skills": list(SKILL_NAMES), "achievements": list(ACHIEVEMENTS),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in cfg.__dict__.items()}}
    atomic_write_json(cfg.out / META_FILE, meta)
    instruction = _INSTRUCTIONS[cfg.driver]
    paths = []
    for path, seeds in shard_plan(cfg):
        if not path.exists():
            collect_shard(cfg, path, seeds, drive, progress)
        elif progress is not None:
            for _ in seeds:
                next(progress, None)
        paths.append(path)
    write_dataset_card(cfg.out, "Crafter episodes for world-model training", {
        "env": "Crafter via tools.envs.crafter.CrafterEnv (64x64 RGB + 42-dim state, 17 actions)",
        "driver": f"{cfg.driver}: {instruction}", "seeds": f"{cfg.seed}-{cfg.seed + cfg.episodes - 1} (episode index "
        "= world seed)", "steps per episode": f"at most {cfg.steps}", "config": meta["config"],
        "skill": f"index into {META_FILE}'s skills, -1 for random actions"}, {instruction: cfg.episodes},
        action="the env's action index, -1 on the row of an episode's final observation")
    return paths


def load_episodes(root: str | Path) -> list[dict[str, np.ndarray]]:
    """Every episode of the episode dataset under ``root`` as frames (see :class:`SequenceSampler`).

    Datasets without ``skill``/``is_terminal`` (the policies' expert demonstrations) read as skill -1 and
    never terminal; their episodes hold no final observation, so every frame has an action.
    """
    root = Path(root)
    if root.is_dir() and not list(root.glob(SHARD_GLOB)) and list(root.glob("*.npz")):
        raise FileNotFoundError(f"{root} holds .npz shards, a format embodia no longer reads; collect again with "
                                f"`embodia collect --for world-model --out {root}` (same seeds, same episodes)")
    try:
        table = load_episode_dataset(root, columns=[EPISODE_INDEX, OBS_IMAGE, OBS_STATE, ACTION, REWARD],
                                     optional=(SKILL, IS_TERMINAL)).data
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; collect with `embodia collect --for world-model --out {root}`") from None
    cols = {name: table.column(name) for name in table.column_names}
    index = np.asarray(cols[EPISODE_INDEX].to_numpy())
    n_rows = len(index)
    states = np.asarray(cols[OBS_STATE].combine_chunks().flatten(), np.float32).reshape(n_rows, -1)
    actions = np.asarray(cols[ACTION].to_numpy(), np.int16)
    rewards = np.asarray(cols[REWARD].to_numpy(), np.float32)
    skills = np.asarray(cols[SKILL].to_numpy(), np.int16) if SKILL in cols else np.full(n_rows, -1, np.int16)
    terminal = np.asarray(cols[IS_TERMINAL].to_numpy(), bool) if IS_TERMINAL in cols else np.zeros(n_rows, bool)
    images = cols[OBS_IMAGE].to_pylist()
    starts = np.flatnonzero(np.append(True, index[1:] != index[:-1]))  # an episode's rows are contiguous
    episodes = []
    for start, end in zip(starts, np.append(starts[1:], n_rows), strict=True):
        n = end - start
        reward = np.zeros(n, np.float32)
        reward[1:] = rewards[start:end - 1]
        episodes.append({
            "image": np.stack([decode_png(images[r]) for r in range(start, end)]),
            "state": states[start:end],
            "action": actions[start:end],
            "reward": reward,
            "is_first": np.arange(n) == 0,
            "is_terminal": terminal[start:end],
            "skill": skills[start:end],
        })
    return episodes


# --- sampling ---
class SequenceSampler:
    """Uniformly random windows of ``seq_len`` frames from episodes, as (B, T, ...) tensors.

    An episode is a dict of frames (:func:`load_episodes`, :func:`collect_episode`): ``image`` (T, 64, 64, 3)
    uint8, ``state`` (T, S), ``action`` (T,) taken after frame t (-1 after the last), ``reward`` (T,) that
    led to frame t, ``is_first``, ``is_terminal`` and ``skill`` (T,).

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
