"""Meta-World demonstrations from the scripted experts, as an episode dataset (DESIGN §6).

Each task runs its scripted expert (``tools.envs.metaworld.ScriptedExpert``) on seeds ``seed,
seed+1, ...`` until it has its share of *successful* episodes (failures are counted in the card,
not recorded). An episode ends on the step the task reports success, so every recorded
episode finishes its job. One episode is one shard, named after its task and seed, so a rerun
skips the episodes already written; tasks run in name order, so episode indices follow the
shard file order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

from tools.collect_crafter import CollectReport
from tools.envs.metaworld import ACTION_DIM, STATE_DIM, MetaWorldEnv, ScriptedExpert, get_task
from tools.episode_dataset import EpisodeBuffer, shard_summary, write_dataset_card, write_shard
from tools.language_motion import metaworld_motion


def run_expert(env: MetaWorldEnv, expert: ScriptedExpert, seed: int) -> tuple[EpisodeBuffer, bool]:
    """One expert episode in the world of ``seed``: its steps and whether the task succeeded."""
    obs, _ = env.reset(seed=seed)
    buffer = EpisodeBuffer(env.instruction)
    previous = None
    while True:
        action = expert(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, motion=metaworld_motion(action, previous))
        previous = action
        obs = next_obs
        if terminated or truncated:
            return buffer, terminated


def collect_metaworld(
    out: str | Path,
    episodes: int,
    tasks: Sequence[str],
    seed: int = 0,
    max_steps: int = 200,
    command: str = "",
    on_episode: Callable[[str, int], None] | None = None,
) -> CollectReport:
    """Collect at least ``episodes`` successful expert episodes, split evenly over ``tasks``, into ``out``.

    Each task tries at most ``2 * share + 10`` seeds (a broken expert cannot loop forever).
    ``on_episode(task, episodes_so_far)`` is called after each attempt, for progress bars.
    """
    for name in tasks:
        get_task(name)  # fail on a typo before any work
    out, share = Path(out), math.ceil(episodes / len(tasks))
    total, frames = 0, 0
    counts: Counter = Counter()
    failures: Counter = Counter()
    seeds: set[int] = set()
    for task in sorted(set(tasks)):
        env, expert = MetaWorldEnv(task, max_steps=max_steps), ScriptedExpert(task)
        done, world = 0, seed
        while done < share and world < seed + 2 * share + 10:
            shard = out / "data" / f"{task}-seed-{world:06d}.parquet"
            if shard.exists():
                rows, names = shard_summary(shard)
            else:
                buffer, ok = run_expert(env, expert, world)
                rows, names = 0, []
                if ok:
                    rows, names = write_shard(shard, [buffer], first_episode_index=total), [buffer.instruction]
                else:
                    failures[task] += 1
            done, total, frames = done + len(names), total + len(names), frames + rows
            counts.update(names)
            seeds.add(world)
            world += 1
            if on_episode is not None:
                on_episode(task, total)
        env.close()
    facts = {
        "env": f"Meta-World {version('metaworld')} MT1 tasks (mujoco {version('mujoco')}) via "
        f"tools.envs.metaworld.MetaWorldEnv: 64x64 RGB from the corner camera (upright), {STATE_DIM}-dim state, "
        f"{ACTION_DIM} continuous actions in [-1, 1]",
        "tasks": ", ".join(f"{t} ({get_task(t).env_name})" for t in sorted(set(tasks))),
        "expert": "metaworld.policies.Sawyer<Task>V3Policy (tools.envs.metaworld.ScriptedExpert), actions clipped "
        "to [-1, 1]; an episode ends on the first successful step",
        "seeds": f"{min(seeds)}-{max(seeds)} per task (one episode per task and seed, one shard per episode)",
        "max steps per episode": max_steps,
        "episodes": total,
        "frames": frames,
        "failed expert episodes (not recorded, this run)": dict(sorted(failures.items())) or "none",
        "command": f"`{command}`" if command else "tools.collect_metaworld.collect_metaworld",
    }
    write_dataset_card(out, "Meta-World scripted-expert demonstrations", facts, dict(counts),
                       action=f"a list of {ACTION_DIM} floats (end-effector dx, dy, dz, gripper effort)")
    return CollectReport(out, total, frames, sorted(seeds), dict(counts), dict(failures))
