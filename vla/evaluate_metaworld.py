"""Closed-loop per-task success on Meta-World: learned policies vs the scripted expert, same seeds.

Every runner (each policy, and the expert) starts from the same placement (``reset(seed=s)``) of
each task and gets ``max_steps`` env steps; an episode succeeds when the task reports success
on any step (the env then terminates). Seeds should be ones the dataset never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tools.envs.metaworld import TASKS, MetaWorldEnv, ScriptedExpert
from vla.base import Policy

Actor = Callable[[dict[str, np.ndarray]], np.ndarray]


def tasks_for_instructions(instructions: Sequence[str]) -> list[str]:
    """The Meta-World tasks whose instruction appears in ``instructions`` (e.g. a dataset's), in name order."""
    seen = set(instructions)
    return sorted(name for name, task in TASKS.items() if task.instruction in seen)


def run_episode(env: MetaWorldEnv, act: Actor, seed: int) -> tuple[bool, int]:
    """(success, steps) of one episode from ``reset(seed=seed)``."""
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, _ = env.step(act(obs))
        if terminated or truncated:
            return terminated, env.steps


def policy_actor(policy: Policy, instruction: str) -> Actor:
    policy.reset()
    return lambda obs: policy.act(obs, instruction)


def compare_tasks(
    policies: dict[str, Policy], tasks: Sequence[str], seeds: Sequence[int], max_steps: int = 200,
    on_episode: Callable[[str, str, int], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per-task success ``{runner: {task: {"success", "attempts", "mean_steps"}}}`` for each policy and ``"expert"``.

    ``mean_steps`` averages over successful episodes only (None when none succeeded).
    ``on_episode(runner, task, seed)`` is called after each episode, for progress bars.
    """
    results: dict[str, dict[str, dict[str, float]]] = {label: {} for label in [*policies, "expert"]}
    for task in tasks:
        env = MetaWorldEnv(task, max_steps=max_steps)
        try:
            for policy in policies.values():
                policy.config.check_spaces(env.observation_space, env.action_space)
            for label in results:
                outcomes = []
                for seed in seeds:
                    if label == "expert":
                        act: Actor = ScriptedExpert(task)
                    else:
                        act = policy_actor(policies[label], env.instruction)
                    outcomes.append(run_episode(env, act, seed))
                    if on_episode is not None:
                        on_episode(label, task, seed)
                wins = [steps for ok, steps in outcomes if ok]
                results[label][task] = {"success": len(wins) / len(outcomes), "attempts": len(outcomes),
                                        "mean_steps": round(float(np.mean(wins)), 1) if wins else None}
        finally:
            env.close()
    return results
