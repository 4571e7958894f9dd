"""Corrections in language: typed motions that override RT-H, logged as intervention data, learned from.

RT-H's intervention loop (Belkhale et al. 2024, §4): a person watching the policy types a language motion;
it replaces the predicted motion for the next steps; the (observation, task, corrected motion) rows are
kept and the high-level query is fine-tuned on them (RT-H-Intervene). Here:

* :func:`resolve_motion` checks a typed phrase against the policy's vocabulary (nothing runs on a phrase
  outside it; the closest ones are offered);
* :func:`write_interventions` stores the rows a policy acted under a correction (``RTHPolicy.interventions``)
  as an episode-dataset shard with the ``language_motion`` column (``tools.episode_dataset``), so they are
  training data like any collection;
* :func:`finetune_motion` fine-tunes only the motion query on them through ``vla.train.train``
  (``RTHConfig.trainable="motion"``), so the action query answers as before;
* :class:`ExpertCorrector` stands in for the person in benchmarks: where the policy's predicted motion
  differs from the scripted expert's next motion, it types the expert's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tools.episode_dataset import SHARD_GLOB, EpisodeBuffer, write_shard
from tools.language_motion import closest_motions, crafter_motion_in_env
from vla.rth.modeling_rth import Intervention, RTHPolicy

#: Where a chat session keeps its intervention data (an episode dataset: ``interventions/data/*.parquet``).
INTERVENTIONS_DIR = "interventions"


class UnknownMotionError(ValueError):
    """A typed motion is not in the policy's vocabulary; ``suggestions`` holds the closest phrases."""

    def __init__(self, text: str, suggestions: list[str]) -> None:
        super().__init__(f"{text!r} is not a motion this policy knows; closest: {', '.join(suggestions)}")
        self.suggestions = suggestions


def resolve_motion(text: str, vocabulary: Sequence[str]) -> str:
    """The vocabulary phrase ``text`` means (case and spacing ignored); :class:`UnknownMotionError` otherwise."""
    phrase = " ".join(text.lower().split())
    if phrase in vocabulary:
        return phrase
    raise UnknownMotionError(text, closest_motions(phrase, vocabulary))


def intervention_episodes(interventions: Sequence[Intervention]) -> list[EpisodeBuffer]:
    """Consecutive rows of the same instruction as one episode each, in the episode-dataset layout."""
    episodes: list[EpisodeBuffer] = []
    for row in interventions:
        if not episodes or episodes[-1].instruction != row.instruction:
            episodes.append(EpisodeBuffer(row.instruction))
        episodes[-1].add(row.obs, row.action, 0.0, motion=row.motion)
    return episodes


def write_interventions(folder: str | Path, interventions: Sequence[Intervention]) -> Path | None:
    """Append ``interventions`` to the episode dataset ``folder`` as a new shard (atomic); None when empty.

    Shards are numbered on from the ones present and their episode indices continue, so a dataset written over
    several sessions reads as one.
    """
    if not interventions:
        return None
    folder = Path(folder)
    shards = sorted(folder.glob(SHARD_GLOB))
    first = 0
    if shards:
        import pyarrow.parquet as pq

        first = max(max(pq.read_table(s, columns=["episode_index"]).column(0).to_pylist(), default=-1)
                    for s in shards) + 1
    path = folder / "data" / f"interventions-{len(shards):05d}.parquet"
    write_shard(path, intervention_episodes(interventions), first_episode_index=first)
    return path


def interventions_root(folder: str | Path) -> Path:
    """The intervention dataset of ``folder``: a chat session folder (its ``interventions/``) or the dataset."""
    folder = Path(folder).expanduser()
    nested = folder / INTERVENTIONS_DIR
    root = nested if nested.is_dir() else folder
    if not list(root.glob(SHARD_GLOB)):
        raise FileNotFoundError(f"no intervention data under {folder}: expected {root / SHARD_GLOB} (a chat session "
                                f"folder after `/motion` corrections, or its {INTERVENTIONS_DIR}/ folder)")
    return root


def replay_mix(interventions: Path, replay: str | Path, folder: Path, share: float) -> Path:
    """An episode dataset of links: every shard of ``replay`` plus the intervention shards repeated so they are
    about ``share`` of the rows (RT-H trains on its original data together with the corrections)."""
    import pyarrow.parquet as pq

    from tools.episode_dataset import shard_files

    base, extra = shard_files(replay), sorted(interventions.glob(SHARD_GLOB))
    rows = [sum(pq.read_metadata(f).num_rows for f in files) for files in (base, extra)]
    repeat = max(1, round(share * rows[0] / max(1, (1 - share) * rows[1])))
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.parquet"):
        old.unlink()
    for f in base:
        (data / f"replay-{f.name}").symlink_to(f.resolve())
    for k in range(repeat):
        for f in extra:
            (data / f"interventions-{k:04d}-{f.name}").symlink_to(f.resolve())
    return folder


def finetune_motion(init: str | Path, interventions: str | Path, out: str | Path, *, steps: int = 200,
                    lr: float = 3e-4, batch_size: int = 32, seed: int = 0, replay: str | Path | None = None,
                    share: float = 0.25) -> dict[str, Any]:
    """Fine-tune the motion query of the RT-H checkpoint ``init`` on intervention data; writes ``out``.

    Only the motion query token and head train (``trainable="motion"``), with ``vla.train.train`` (its
    checkpoints, resume and metrics). With ``replay`` (the demonstrations, with ``language_motion``) the
    corrections are mixed into it at about ``share`` of the rows, so the motions the person never had to
    correct are not forgotten (on corrections alone the motion query unlearns them: ``vla/README.md``). The
    saved checkpoint keeps ``init``'s skill list and trains fully again.
    """
    import pyarrow.parquet as pq

    from vla.registry import checkpoint_of, load_policy
    from vla.train import TrainConfig, train

    base = load_policy(checkpoint_of(init))
    if not isinstance(base, RTHPolicy):
        raise ValueError(f"{init} is a {base.name!r} policy; interventions fine-tune an RT-H (rth) checkpoint")
    root = interventions_root(interventions)
    rows = sum(pq.read_metadata(s).num_rows for s in root.glob(SHARD_GLOB))
    data = replay_mix(root, replay, Path(out) / "mix", share) if replay else root
    cfg = TrainConfig(data=str(data), out=str(out), policy=replace(base.config, trainable="motion", dropout=0.0),
                      steps=steps, batch_size=max(1, min(batch_size, rows)), lr=lr, warmup_steps=min(10, steps),
                      seed=seed, val_every=10**9, checkpoint_every=steps, eval_seeds=(),
                      init=str(checkpoint_of(init)))
    metrics = train(cfg)
    tuned = load_policy(out)
    tuned.config = replace(tuned.config, trainable="all", dropout=base.config.dropout,
                           instructions=tuple(sorted(set(base.config.instructions) | set(tuned.config.instructions))))
    tuned.save_pretrained(out)
    metrics["interventions"] = {"folder": str(root), "rows": rows, "init": str(init), "replay": str(replay or ""),
                                "share": share if replay else 1.0}
    metrics["config"]["policy"] = asdict(tuned.config)
    return metrics


class ExpertCorrector:
    """The person of RT-H's correction loop, played by the scripted expert on Crafter skills.

    ``ExpertCorrector(policy, limit)(env, skill, budget)`` runs ``policy`` on the skill; before each action it
    asks the policy's motion query and the expert's next action (``tools.skills.crafter.expert_action``); where
    the phrases differ it types the expert's motion for one step (``policy.override``). The steps corrected
    land in ``policy.interventions``; ``corrections`` counts them, at most ``limit`` per call.
    """

    def __init__(self, policy: RTHPolicy, limit: int = 10**9) -> None:
        self.policy, self.limit, self.corrections = policy, limit, 0

    def __call__(self, env, name: str, budget: int | None = None):
        import numpy as np

        from tools.skills.crafter import expert_action, run_policy_skill

        policy, game, used = self.policy, env.unwrapped, 0
        policy.reset()

        def choose(obs: dict[str, np.ndarray]) -> int:
            nonlocal used
            expert = expert_action(game, name)
            if expert is not None and used < self.limit:
                wanted = crafter_motion_in_env(game, expert)
                batch = {k: np.asarray(v)[None] for k, v in obs.items()}
                predicted = policy.config.motions[int(policy.predict_motion(batch, [name]).argmax())]
                if wanted != predicted and wanted in policy.config.motions:
                    policy.override(wanted, 1)
                    used += 1
                    self.corrections += 1
            return int(policy.act(obs, name))

        return run_policy_skill(env, name, choose, budget=budget)
