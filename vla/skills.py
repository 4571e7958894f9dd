"""Learned skills: a trained policy behind the same call as the scripted expert ``run_skill``.

``LearnedSkillRunner(policy)(env, name, budget=None) -> ToolResult`` has ``run_skill``'s
signature, stop rules and result data (``tools.skills.crafter.run_policy_skill``), so the
agent's ``act`` tool can use either one.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium

from tools.base import ToolResult
from tools.skills.crafter import SKILLS, normalise_skill_name, run_policy_skill
from vla.base import Policy, SpaceMismatchError
from vla.registry import CHECKPOINTS, LEARNED, checkpoint_of, load_policy

#: The shipped checkpoints (``embodia train vla`` reproduces them; see their READMEs): Crafter skills (the
#: default learned policy, ``vla.registry``), and the Meta-World arm (continuous; ``vla.evaluate_metaworld``).
DEFAULT_CHECKPOINT = checkpoint_of(LEARNED)
METAWORLD_CHECKPOINT = CHECKPOINTS / "hybrid-metaworld"


class LearnedSkillRunner:
    """Runs skill ``name`` by asking ``policy`` for each action with the skill name as instruction.

    ``stop_on_new_threat``: a run also ends when a zombie arrives next to the player (the agent's planner then
    decides to fight or flee; ``tools.skills.harness.SkillRun``). Off for the per-skill measurements.
    """

    def __init__(self, policy: Policy, stop_on_new_threat: bool = False) -> None:
        self.policy = policy.eval()
        self.stop_on_new_threat = stop_on_new_threat

    @classmethod
    def from_pretrained(cls, policy: str | Path = LEARNED, stop_on_new_threat: bool = False) -> LearnedSkillRunner:
        """``policy``: a registered name (``hybrid``, ...), ``learned`` (the default), or a checkpoint folder."""
        return cls(load_policy(policy), stop_on_new_threat)

    def __call__(self, env: gymnasium.Env, name: str, budget: int | None = None) -> ToolResult:
        """Raises :class:`SpaceMismatchError` naming both when the checkpoint's observation shapes or skill names
        are not the env's; a skill the policy was not trained on fails at once, listing the ones it knows."""
        self.policy.config.check_spaces(env.observation_space, env.action_space)
        known = self.policy.config.instructions
        foreign = sorted(set(known) - set(SKILLS))
        if foreign:
            raise SpaceMismatchError(f"checkpoint skills {foreign} are not skills of this env (Crafter skills: "
                                     f"{', '.join(sorted(SKILLS))})")
        if known and normalise_skill_name(name) not in known:
            message = f"the learned policy was not trained on {name!r}; it knows: {', '.join(known)}"
            return ToolResult(ok=False, text=message, error=message, data={"skill": name, "reason": message})
        self.policy.reset()
        return run_policy_skill(env, name, lambda obs: self.policy.act(obs, name), budget=budget,
                                stop_on_new_threat=self.stop_on_new_threat)
