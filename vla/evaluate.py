"""Closed-loop skill evaluation: learned policy vs scripted expert from the *same* world states.

Held-out worlds run the collection curriculum (``tools.collect_crafter.CHAIN``) with the expert;
before each expert call the world is copied and the learned runner attempts the same skill in
the copy, so both face identical situations (inventory, nearby table, time of day). Skills whose
requirements are unmet at that point are skipped for both.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

from tools.collect_crafter import feasible_chain
from tools.envs.crafter import CrafterEnv
from tools.skills.crafter import SKILLS, run_skill
from vla.skills import LearnedSkillRunner


def compare_skills(
    runners: dict[str, LearnedSkillRunner], seeds: Sequence[int], budget: int = 150,
    on_seed: Callable[[int], None] | None = None, skills: Collection[str] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per-skill success ``{runner: {skill: {"success": rate, "attempts": n}}}`` plus the ``"expert"`` row.

    Every learned runner and the expert get ``min(budget, skill budget)`` env steps per attempt. With ``skills``
    only those are attempted and scored; the expert still runs the whole chain to move the world on.
    """
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for seed in seeds:
        env = CrafterEnv(seed=seed)
        env.reset(seed=seed)
        for name in feasible_chain(env):
            steps = min(budget, SKILLS[name].budget)
            if skills is not None and name not in skills:
                run_skill(env, name, budget=steps)
                continue
            for label, runner in runners.items():
                hits[label][name].append(runner(copy.deepcopy(env), name, budget=steps).ok)
            hits["expert"][name].append(run_skill(env, name, budget=steps).ok)
        if on_seed is not None:
            on_seed(seed)
    return {label: {name: {"success": sum(v) / len(v), "attempts": len(v)} for name, v in sorted(skills.items())}
            for label, skills in hits.items()}


def mean_success(per_skill: dict[str, dict[str, float]]) -> float:
    """Unweighted mean over skills (each skill counts once, however often it was attempted)."""
    return sum(s["success"] for s in per_skill.values()) / max(1, len(per_skill))
