"""DAgger for the learned Crafter skills: ``embodia train dagger`` (Ross, Gordon & Bagnell 2011).

Behaviour cloning only sees the expert's own states; in closed loop the policy drifts into states no
demonstration covers. Each round here rolls the current policy out on fresh training worlds, mixed with the
scripted expert (at each step the expert's action is executed with probability ``beta_r = beta ** r``),
labels *every* visited state with the expert's action for the same skill (``tools.skills.crafter.
expert_action``: the scripted bodies re-plan from the privileged state, so they can label any state), adds
those rows to the aggregated dataset and fine-tunes the previous round's policy on all of it with
``vla.train.train`` (fine-tuning, not retraining: a round costs a few hundred steps instead of the 1500 the
shipped checkpoint took, and the aggregate still holds the expert data, so nothing is forgotten).

Layout of ``out`` (one folder per round, so a round is redone or skipped whole)::

    data/data/base-*.parquet        links to the expert demonstrations (round 0)
    data/data/round-RR.parquet      round RR's relabelled states, written atomically when the round's
                                    rollouts are complete (a killed round leaves none: nothing duplicates)
    round-00.json                   the starting policy's held-out per-skill success (and the expert's)
    rounds/round-RR/policy/         that round's policy (+ vla.train's resumable checkpoint/)
    rounds/round-RR/round.json      written last: the round is done; ``resume`` skips it
    dagger.json                     config and the round table

Each learner rollout runs on a copy of the world while the expert runs the curriculum
(``tools.collect_crafter.CHAIN``) on the original, as ``vla.evaluate.compare_skills`` does, so every round
meets the same situations a collection does. Seeds (worlds, the beta coin) depend only on (seed, round,
world), so a resumed round writes the same rows as an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from tools.base import ToolResult
from tools.collect_crafter import CHAIN, feasible_chain
from tools.envs.crafter import CrafterEnv
from tools.episode_dataset import EpisodeBuffer, shard_files, shard_summary, write_dataset_card, write_shard
from tools.io import atomic_write_json
from tools.skills.crafter import SKILLS, expert_action, normalise_skill_name, run_policy_skill, run_skill
from tools.skills.harness import Stop, check_sight
from tools.train_state import ResumeMismatchError
from vla.base import Policy
from vla.evaluate import compare_skills, mean_success
from vla.registry import checkpoint_of, load_policy
from vla.skills import LearnedSkillRunner
from vla.train import TrainConfig, train

#: Episode indices of round r start at r * ROUND_STRIDE, above any expert collection's.
ROUND_STRIDE = 10_000_000
#: Fields a resumed run may change (how many rounds to run, and the flag itself).
RESUMABLE = ("rounds", "resume")

#: ``on_progress(round, phase, done, total)``: phase is "collect", "train" or "eval".
Progress = Callable[[int, str, int, int], None]


@dataclass
class DaggerConfig:
    """Args:
    out: output folder (layout in the module docstring).
    init: the starting policy: a registered name, ``learned`` (the shipped default) or a checkpoint folder.
    base_data: the expert demonstrations aggregated with every round ('' = the DAgger rows only).
    skills: the skills rolled out, relabelled and evaluated (names as the planner writes them).
    rounds: DAgger rounds to run (a resumed run may raise it to add rounds).
    worlds: fresh training worlds per round.
    first_world: world seed of round 1's first world; round r uses the next ``worlds`` after round r-1's.
    beta: the expert executes its own action with probability ``beta ** r`` in round r.
    budget: env steps per learner rollout (at most the skill's own budget).
    steps: fine-tuning steps per round (``vla.train.train`` from the previous round's weights).
    lr: peak learning rate of each round's fine-tuning.
    warmup_steps: linear warmup of each round's fine-tuning.
    batch_size: rows per fine-tuning step.
    on_policy_fraction: share of each round's training rows drawn from the DAgger rows (0: the aggregate sampled
        uniformly, where the relabelled rows were 3-5% and moved nothing). The round trains on a view that links
        the expert shards once and each DAgger shard ``k`` times (:func:`training_view`); the aggregate itself
        holds every visited state exactly once.
    eval_seeds: held-out worlds for each round's per-skill success (``vla.evaluate.compare_skills``).
    eval_budget: env steps per attempt in that evaluation.
    seed: seeds the beta coin and the training batches.
    sight: what the labelling expert reads (``tools.skills.harness.SIGHTS``): ``map``, the whole world, or
        ``view``, the tiles of the frame the policy sees. A ``map`` label can depend on things out of the frame
        (the lake 20 tiles east), which a memoryless pixel policy cannot imitate.
    resume: continue a run in ``out``: finished rounds are skipped, an unfinished one is redone.
    """

    out: str = "runs/vla/dagger-crafter"
    init: str = "learned"
    base_data: str = "data/crafter-skills"
    skills: tuple[str, ...] = ("collect wood", "place table", "make wood_pickaxe", "collect stone", "drink water")
    rounds: int = 3
    worlds: int = 4
    first_world: int = 5000
    beta: float = 0.5
    budget: int = 150
    steps: int = 300
    lr: float = 3e-4
    warmup_steps: int = 20
    batch_size: int = 64
    on_policy_fraction: float = 0.0
    eval_seeds: tuple[int, ...] = (1000, 1001, 1002)
    eval_budget: int = 150
    seed: int = 0
    sight: str = "map"
    resume: bool = False

    def __post_init__(self) -> None:
        for name in ("rounds", "worlds", "budget", "steps", "batch_size", "eval_budget"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_sight(self.sight)
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if not 0.0 <= self.on_policy_fraction < 1.0:
            raise ValueError(f"on_policy_fraction must be in [0, 1), got {self.on_policy_fraction}")
        names = tuple(normalise_skill_name(s) for s in self.skills)
        unknown = [s for s, n in zip(self.skills, names, strict=True) if n not in SKILLS]
        if unknown or not names:
            raise ValueError(f"unknown skill(s) {unknown or '(none given)'}; known skills: {', '.join(sorted(SKILLS))}")
        outside = [n for n in names if n not in CHAIN]
        if outside:
            raise ValueError(f"skill(s) {outside} never come up in the curriculum; DAgger can roll out: "
                             f"{', '.join(sorted(set(CHAIN)))}")
        self.skills = tuple(dict.fromkeys(names))

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in RESUMABLE}


@dataclass
class Step:
    """One visited state: the expert's label, the learner's choice, and whether the expert's was executed."""

    label: int
    learner: int
    by_expert: bool

    @property
    def executed(self) -> int:
        return self.label if self.by_expert else self.learner


class _Labelled(gymnasium.Wrapper):
    """Records each executed step: (state before, expert label, reward) into ``buffer`` and its :class:`Step`.

    Recording on the env step, not on the choice, keeps a choice the harness then refuses (the budget ran
    out) out of the data.
    """

    def __init__(self, env: gymnasium.Env, buffer: EpisodeBuffer) -> None:
        super().__init__(env)
        self.buffer = buffer
        self.steps: list[Step] = []
        self.pending: tuple[dict[str, np.ndarray], Step] | None = None

    def step(self, action: int):
        assert self.pending is not None and self.pending[1].executed == action, "a rollout step without a label"
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.buffer.add(self.pending[0], self.pending[1].label, reward)
        self.steps.append(self.pending[1])
        self.pending = None
        return obs, reward, terminated, truncated, info


def rollout(env: gymnasium.Env, name: str, policy: Policy, beta: float, rng: np.random.Generator,
            budget: int | None = None, sight: str = "map") -> tuple[EpisodeBuffer, list[Step], ToolResult]:
    """Run skill ``name`` on ``env`` (stepped in place) with the beta-mixture; every visited state is labelled.

    The run stops by the skill's own rules, or where the expert would give up (it has no label there).
    Returns the labelled episode, one :class:`Step` per env step, and the skill's result.
    """
    labelled = _Labelled(env, EpisodeBuffer(name))
    policy.reset()

    def choose(obs: dict[str, np.ndarray]) -> int:
        label = expert_action(env, name, sight)
        if label is None:
            raise Stop(False, "the expert has no action here")
        step = Step(label, int(policy.act(obs, name)), by_expert=bool(rng.random() < beta))
        labelled.pending = (obs, step)
        return step.executed

    result = run_policy_skill(labelled, name, choose, budget=budget)
    return labelled.buffer, labelled.steps, result


def collect_round(cfg: DaggerConfig, round_no: int, policy: Policy,
                  on_world: Callable[[int], None] | None = None) -> tuple[list[EpisodeBuffer], dict[str, Any]]:
    """Round ``round_no``'s rollouts on its fresh worlds: the labelled episodes and their counts."""
    beta = cfg.beta ** round_no
    first = cfg.first_world + (round_no - 1) * cfg.worlds
    episodes: list[EpisodeBuffer] = []
    stats: Counter = Counter()
    per_skill: Counter = Counter()
    for done, world in enumerate(range(first, first + cfg.worlds), 1):
        rng = np.random.default_rng([cfg.seed, round_no, world])
        env = CrafterEnv(seed=world)
        env.reset(seed=world)
        for name in feasible_chain(env):
            if name in cfg.skills:
                buffer, steps, result = rollout(copy.deepcopy(env), name, policy, beta, rng,
                                                min(cfg.budget, SKILLS[name].budget), cfg.sight)
                if len(buffer):
                    episodes.append(buffer)
                    per_skill[name] += len(buffer)
                stats.update(rollouts=1, succeeded=int(result.ok), visited=len(steps),
                             learner_steps=sum(not s.by_expert for s in steps),
                             disagreements=sum(s.learner != s.label for s in steps))
            run_skill(env, name)  # the expert moves the world on, as in a collection
        if on_world is not None:
            on_world(done)
    summary = {"beta": beta, "worlds": f"{first}-{first + cfg.worlds - 1}", **stats,
               "rows_per_skill": dict(sorted(per_skill.items()))}
    return episodes, summary


def evaluate(policy: Policy, cfg: DaggerConfig) -> dict[str, dict[str, dict[str, float]]]:
    """Per-skill success of ``policy`` and the expert on the held-out worlds, for ``cfg.skills``."""
    return compare_skills({"learned": LearnedSkillRunner(policy)}, cfg.eval_seeds, cfg.eval_budget,
                          skills=cfg.skills)


def _round_dir(out: Path, round_no: int) -> Path:
    return out / "rounds" / f"round-{round_no:02d}"


def _prepare(cfg: DaggerConfig, out: Path) -> None:
    """Check or write ``out/config.json`` and link the expert shards into the aggregate."""
    config_file = out / "config.json"
    if config_file.exists():
        if not cfg.resume:
            raise FileExistsError(f"{out} holds a DAgger run already; pass --resume to continue it or choose "
                                  "another --out")
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        current = json.loads(json.dumps(cfg.identity()))  # tuples as the saved JSON lists
        defaults = json.loads(json.dumps(DaggerConfig().identity()))  # a field added since: its default is the same run
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k, defaults.get(k)) != current.get(k))
        if changed:
            raise ResumeMismatchError(f"{config_file} was made with other settings ({', '.join(changed)}); "
                                      f"resume with the same flags or choose another --out")
        return
    shards = out / "data" / "data"
    shards.mkdir(parents=True, exist_ok=True)
    if cfg.base_data:
        for shard in shard_files(cfg.base_data):
            link = shards / f"base-{shard.name}"
            if not link.exists():
                link.symlink_to(shard.resolve())
    atomic_write_json(config_file, cfg.identity())


def run_dagger(cfg: DaggerConfig, on_progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) the DAgger rounds; returns the round table also written to ``out/dagger.json``."""
    out = Path(cfg.out)
    tick = on_progress or (lambda *_: None)
    start = checkpoint_of(cfg.init)  # a bad reference fails before anything is written
    _prepare(cfg, out)
    table: list[dict[str, Any]] = []
    first = out / "round-00.json"
    if not first.exists():
        tick(0, "eval", 0, 1)
        atomic_write_json(first, {"round": 0, "policy": str(start), "eval": evaluate(load_policy(start), cfg)})
        tick(0, "eval", 1, 1)
    table.append(json.loads(first.read_text(encoding="utf-8")))
    previous = start
    for round_no in range(1, cfg.rounds + 1):
        folder = _round_dir(out, round_no)
        record_file = folder / "round.json"
        if record_file.exists():
            table.append(json.loads(record_file.read_text(encoding="utf-8")))
            previous = folder / "policy"
            continue
        shard = out / "data" / "data" / f"round-{round_no:02d}.parquet"
        if shard.exists():  # the rollouts finished before a kill; only training/eval are redone
            rows, _ = shard_summary(shard)
            summary = json.loads((folder / "collected.json").read_text(encoding="utf-8"))
        else:
            policy = load_policy(previous)
            episodes, summary = collect_round(cfg, round_no, policy,
                                              lambda done, r=round_no: tick(r, "collect", done, cfg.worlds))
            indices = [round_no * ROUND_STRIDE + i for i in range(len(episodes))]
            atomic_write_json(folder / "collected.json", summary)
            rows = write_shard(shard, episodes, indices=indices)
        _write_card(out, cfg)
        base = load_policy(previous)
        data, view = training_view(cfg, out, folder)
        train_cfg = TrainConfig(data=str(data), out=str(folder / "policy"), policy=base.config,
                                steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                                seed=cfg.seed, checkpoint_every=max(1, cfg.steps // 3), eval_seeds=(), resume=True,
                                init=str(previous))
        metrics = train(train_cfg, on_step=lambda step, _info, r=round_no: tick(r, "train", step, cfg.steps))
        tick(round_no, "eval", 0, 1)
        scores = evaluate(load_policy(folder / "policy"), cfg)
        tick(round_no, "eval", 1, 1)
        record = {"round": round_no, "policy": str(folder / "policy"), "rows_added": rows,
                  "aggregate_rows": view["aggregate_rows"], "training_view": view, **summary,
                  "validation": metrics.get("validation"), "eval": scores}
        atomic_write_json(record_file, record)
        table.append(record)
        previous = folder / "policy"
    result = {"config": cfg.identity(), "rounds": table, "table": round_table(table)}
    atomic_write_json(out / "dagger.json", result)
    return result


def training_view(cfg: DaggerConfig, out: Path, folder: Path) -> tuple[Path, dict[str, Any]]:
    """The dataset a round trains on, and its counts: the aggregate ``out/data`` itself, or with
    ``on_policy_fraction`` f a view in ``folder/train-view`` linking each expert shard once and each DAgger shard
    ``k = round(f * expert_rows / ((1 - f) * dagger_rows))`` times, so that about f of every batch is on-policy.

    Links, not copies: the aggregate keeps each visited state once, and the view is rebuilt whole each time.
    """
    shards = shard_files(out / "data")
    rows = {shard: shard_summary(shard)[0] for shard in shards}
    expert = sum(n for shard, n in rows.items() if shard.name.startswith("base-"))
    dagger = sum(rows.values()) - expert
    counts: dict[str, Any] = {"aggregate_rows": expert + dagger, "dagger_rows": dagger, "repeats": 1}
    if not cfg.on_policy_fraction or not dagger or not expert:
        return out / "data", {**counts, "on_policy_share": round(dagger / max(1, expert + dagger), 3)}
    repeats = max(1, round(cfg.on_policy_fraction * expert / ((1 - cfg.on_policy_fraction) * dagger)))
    view = folder / "train-view"
    if view.exists():
        shutil.rmtree(view)
    (view / "data").mkdir(parents=True)
    for shard in shards:
        copies = 1 if shard.name.startswith("base-") else repeats
        for copy_no in range(copies):
            (view / "data" / f"{shard.stem}-{copy_no:03d}.parquet").symlink_to(shard.resolve())
    share = dagger * repeats / (expert + dagger * repeats)
    return view, {**counts, "repeats": repeats, "on_policy_share": round(share, 3)}


def _write_card(out: Path, cfg: DaggerConfig) -> None:
    counts: Counter = Counter()
    for shard in shard_files(out / "data"):
        counts.update(shard_summary(shard)[1])
    facts = {"base data": cfg.base_data or "none", "skills relabelled": ", ".join(cfg.skills),
             "labels": f"tools.skills.crafter.expert_action (sight {cfg.sight}) at every state a DAgger rollout "
                       "visited",
             "command": "embodia train dagger (vla.dagger)"}
    write_dataset_card(out / "data", "Crafter skills: expert demonstrations + DAgger rounds", facts, dict(counts))


def _mean(per_skill: dict[str, dict[str, float]]) -> float | None:
    """Mean success, or None when the round was not evaluated (``--eval-seeds ''``): not a measured 0."""
    return round(mean_success(per_skill), 3) if per_skill else None


def round_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per round: per-skill success (and attempts) of that round's policy, the expert's row last."""
    rows = []
    for record in records:
        learned = record["eval"].get("learned", {})
        rows.append({"round": record["round"], "beta": record.get("beta"), "rows_added": record.get("rows_added", 0),
                     "mean": _mean(learned),
                     **{name: f"{s['success']:.0%} ({int(s['attempts'])})" for name, s in learned.items()}})
    expert = records[0]["eval"].get("expert", {}) if records else {}
    rows.append({"round": "expert", "beta": None, "rows_added": None, "mean": _mean(expert),
                 **{name: f"{s['success']:.0%} ({int(s['attempts'])})" for name, s in expert.items()}})
    return rows
