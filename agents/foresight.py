"""The agent's two uses of imagination before it acts, both on the learned world model (``agents.imagination``).

* RAFA's learned-model term (rafa-dream): near-tied futures are imagined and gain ``weight`` × the
  share of rollouts in which they succeed.
* RIG self-correction (rafa-imagine, greedy-blind-imagine): the chosen first step is imagined and
  revised to the next candidate when imagination gives it no chance (``veto``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from agents.memory import Memory
from agents.steps import Candidate


@dataclass
class Foresight:
    """Imagination as the planner consults it (``RafaConfig.imagine_*`` give the numbers).

    Args:
        imagination: an :class:`~agents.imagination.Imagination` (typed loosely: torch loads only when asked).
        env: the real env; rollouts start from its recent frames.
        memory: where revisions are noted.
        veto: imagined success probability at or below which a choice is revised.
        weight: the learned-model term's weight (0: off).
        depth: how many skills of each near-tied future are imagined.
    """

    imagination: Any
    env: gym.Env
    memory: Memory
    veto: float
    weight: float
    depth: int

    def score_near_ties(self, shortlist: list[Candidate]) -> None:
        """Imagine the near-tied futures and add ``weight`` × their success share to their value.

        Only futures that the term could lift to the top are imagined (exact, like the LLM-call skip), so
        a clear critic decision costs no imagination.
        """
        if self.weight <= 0 or len(shortlist) < 2:
            return
        best = max(c.value for c in shortlist)
        contenders = [c for c in shortlist if best - c.value <= self.weight]
        if len(contenders) < 2:
            return
        for candidate in contenders:
            outcome = self.imagination.imagine(self.env, candidate.future[: self.depth])
            candidate.imagined_success = outcome.raw_success_prob
            candidate.value += self.weight * outcome.raw_success_prob

    def choose(self, ranked: list[Candidate]) -> tuple[Candidate, list[str], dict | None, list[dict]]:
        """RIG: imagine the best candidate's first step; revise to the next when imagination vetoes it.

        Returns the chosen candidate, one sentence per revision, the imagined outcome of the chosen
        step and those of the vetoed ones (records). When every candidate is vetoed the best one
        stands: imagination advises, it does not stall.
        """
        revisions, vetoed = [], []
        for candidate in ranked:
            outcome = self.imagination.check(self.env, candidate.first)
            if outcome.success_prob > self.veto:
                return candidate, revisions, outcome.to_record(), vetoed
            revisions.append(f"revised {candidate.first!r}: {outcome.describe()}")
            vetoed.append(outcome.to_record())
            self.memory.add("note", revisions[-1], step=self.env.unwrapped.steps, skill=candidate.first,
                            imagined=vetoed[-1])
        return ranked[0], revisions, vetoed[0], vetoed
