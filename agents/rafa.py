"""RAFA: "reason for future, act for now" (Liu et al., 2023, arXiv:2309.17382).

Each decision:
1. *learn* — build the belief from the observation and memory (placed things,
   lessons that make the model distrust parts of its own memory);
2. *plan for the future* — for each feasible skill, chain a future to the goal
   with the transition model (:class:`~agents.skill_model.SkillModel`) and score
   it with the critic (``agents.critic``: skill calls still needed, vitals, recent
   failures, threats), plus the LLM's preference among the options (``agents.prior``,
   SayCan-style ``score``) and, when on, imagination (``agents.foresight``);
3. *act for now* — execute only the first step of the best future;
4. *update* — store predicted vs actual outcome; on a contradiction write a
   reflection (``agents.reflection``), update the model, and replan (the switching condition).

The ablations (greedy, open-loop, blind) are strategies (``agents.strategies``); imagination
(rafa-imagine, rafa-dream) and the feedback rule are switches on top of any of them.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from agents.foresight import Foresight
from agents.llm.base import LLM
from agents.llm_led import LlmLed, decide
from agents.memory import Memory, RecallTool
from agents.prior import apply_prior, llm_can_change, llm_prior
from agents.reflection import compare, reflect
from agents.skill_model import Belief, Prediction, SkillModel
from agents.steps import ActionStep, Candidate, FinalStep, PlanningStep, Step
from agents.strategies import OpenLoop, strategy_for
from prompts import render_messages
from prompts import version as prompt_version
from tools.base import ToolRegistry, ToolResult
from tools.crafter_tools import ActTool, LookTool, SkillRunner
from tools.envs.crafter import SEMANTIC_NAMES, VITALS, daylight_phase
from tools.envs.crafter_goals import Goal
from tools.skills.crafter import NEAR_RADIUS, SKILLS, run_skill

HOSTILE = frozenset({"zombie"})  # skeletons stay in their tunnels: leaving beats fighting them
#: Skill kinds run by the scripted bodies: ``expert`` reads the whole map, ``expert-view`` only the frame's tiles
#: (the teacher of the learned skills; ``tools.skills.harness.SkillRun.sight``).
SCRIPTED_SKILLS = {"expert": "map", "expert-view": "view"}


def make_skill_runner(kind: str, attempt_budget: int = 0, threat_handback: bool = False) -> SkillRunner:
    """The function behind the ``act`` tool: scripted experts (``expert``; ``expert-view`` sees only the frame's
    tiles), or a learned policy (loaded lazily): ``learned`` (the default one), a registered name (``vla.registry``:
    ``hybrid``, ...) or a checkpoint folder.

    ``attempt_budget`` > 0: the scripted skills try a skill whose items are missing for that many steps.
    ``threat_handback``: a learned skill ends when a zombie arrives next to the player (``RafaConfig``).
    """
    if kind not in SCRIPTED_SKILLS:
        from vla.skills import LearnedSkillRunner

        return LearnedSkillRunner.from_pretrained(kind, stop_on_new_threat=threat_handback)
    if kind == "expert" and not attempt_budget:
        return run_skill
    return functools.partial(run_skill, attempt_budget=attempt_budget or None, sight=SCRIPTED_SKILLS[kind])


@dataclass
class RafaConfig:
    """Budgets and weights of the RAFA loop.

    The ablation switches (``lookahead``, ``replan``, ``feasibility_model``) pick a strategy
    (``agents.strategies.strategy_for``); ``evals/agents.py`` names each combination.

    Args:
        horizon: how many skills of each candidate's future are kept (shown in the thought and the
            log). The critic always scores the whole chain to the goal (``Candidate.cost_to_go``).
        branches: how many candidate futures (best by critic) are shown to the LLM.
        llm_weight: weight of the LLM's option probability in the value; below 1 it
            breaks ties between equally good futures without overruling the critic.
        vital_thresholds: a vital below its threshold is penalised (energy late: sleeping
            in the open is dangerous, so it waits until tiredness starts to hurt).
        night_energy_threshold: the energy threshold at dusk and night once a pickaxe can dig
            a shelter: zombies spawn in the dark, so resting walled-in is the safe plan.
        vital_weight: critic penalty per missing vital point below its threshold.
        failure_penalty: critic penalty per recent failure of the same skill.
        threat_radius: hostile creatures this close (tiles) are threats.
        threat_weight: critic penalty per threat left unfought by the first step.
        fight_min_health: below or at this health, fighting earns no credit (walk away instead).
        threat_handback: a learned skill ends when a zombie arrives next to the player, so the planner (which
            then sees the threat) chooses to fight or flee; the scripted skills hit adjacent zombies themselves.
        recent_steps: how many past transitions the planner prompt shows.
        lessons_shown: how many reflections the planner prompt shows.
        max_env_steps: env-step budget for one goal.
        max_decisions: planning-step budget for one goal.
        max_llm_calls: how many decisions of one goal may consult the LLM (a decision counts once,
            retries included); past it the critic decides alone.
        max_seconds: wall-clock budget for one goal.
        llm_retries: retries of a failed or invalid LLM decision before falling back.
        lookahead: False drops the model and critic: the LLM alone picks among feasible
            skills, one step at a time (the ReAct-style "greedy" baseline).
        replan: False plans once with the model and executes that plan to its end
            whatever happens (the "open-loop" baseline).
        skills: "expert" runs the scripted skills; "expert-view" runs them seeing only the frame's tiles (the
            learned skills' teacher); "learned" runs the shipped HybridVLA policy; a registered policy name
            (``vla.registry``) or a checkpoint folder runs that policy.
        imagination: before acting, imagine the chosen skill in the learned world model and revise
            the choice when imagination gives it no chance (RIG-style self-correction).
        imagine_veto: imagined success probability at or below which a choice is revised. With a
            calibrated checkpoint (``calibration.json``) this is the real success rate of such steps,
            so the default vetoes only a confidently foreseen failure; below 0 imagination only observes.
        imagine_weight: RAFA's learned model term: futures whose value is within this weight of the best
            are imagined (their first ``imagine_depth`` skills) and gain this weight times the share of
            rollouts in which they succeed. Like the LLM's, the term only settles near-ties; 0 turns it off.
        imagine_depth: how many skills of each near-tied future are imagined.
        imagine_calibrated: veto on the calibrated estimate. False uses the raw imagined success: the
            calibration was fitted on steps the skill model allowed, so it means nothing for steps it
            would have refused (see ``feasibility_model``).
        feasibility_model: False hides the skill model's preconditions from the greedy planner
            (``lookahead`` False): every skill is an option, and only the world, or imagination, tells
            which can run. It asks what the learned world model can stand in for.
        world_model: checkpoint folder imagination loads ("": the shipped one), to evaluate a newly
            trained world model without replacing the shipped checkpoint.
        retry_unchanged: False keeps a skill that failed out of the options until a skill succeeds or an
            item is gained or spent: nothing it needs has changed, so it would fail the same way. Real
            feedback, not imagination; the blind planner otherwise picks the same doomed step again and again.
        attempt_budget: 0 refuses a skill whose required items are missing before a single step (the skill
            runner's hand-written check). N > 0 tries it for real for up to N env steps, as a robot without
            that check would, so a blind planner's mistakes cost env steps (scripted skills only).
        planner: "critic-led" (the default): the skill model and critic decide, the LLM breaks near-ties.
            "llm-led": RAFA's own mode (``agents.llm_led``): the LLM proposes futures, predicts each step's
            outcome (checked by the skill model) and values them; the critic decides only when the LLM fails.
        llm_futures: how many candidate futures the llm-led planner imagines per decision.
        llm_depth: how many skills each llm-led future has (every step is one LLM prediction).
        perception: "privileged" (the default): the belief and state text read the env's state. "pixels": only
            the frame (``agents.perception``; the env must be a ``tools.envs.pixels.PixelEnv``), plus memory.
        vlm: the VLM folder whose encoder reads frames in pixel mode ("": the shipped one, or the planner's own).
    """

    horizon: int = 3
    branches: int = 8
    llm_weight: float = 0.5
    vital_thresholds: dict[str, int] = field(default_factory=lambda: {"food": 4, "drink": 4, "energy": 2})
    night_energy_threshold: int = 9
    vital_weight: float = 2.0
    failure_penalty: float = 1.5
    threat_radius: int = 3
    threat_weight: float = 3.0
    fight_min_health: int = 4
    threat_handback: bool = True
    recent_steps: int = 4
    lessons_shown: int = 3
    max_env_steps: int = 10_000
    max_decisions: int = 500
    max_llm_calls: int = 500
    max_seconds: float = 3600.0
    llm_retries: int = 1
    lookahead: bool = True
    replan: bool = True
    skills: str = "expert"
    imagination: bool = False
    imagine_veto: float = 0.05
    imagine_weight: float = 0.0
    imagine_depth: int = 2
    imagine_calibrated: bool = True
    feasibility_model: bool = True
    world_model: str = ""
    retry_unchanged: bool = True
    attempt_budget: int = 0
    planner: str = "critic-led"
    llm_futures: int = 3
    llm_depth: int = 2
    perception: str = "privileged"
    vlm: str = ""

    def __post_init__(self) -> None:
        for name in ("horizon", "branches", "max_env_steps", "max_decisions", "llm_futures", "llm_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"RafaConfig.{name} must be >= 1, got {getattr(self, name)}")
        numbers = {name: getattr(self, name) for name, f in self.__dataclass_fields__.items()
                   if f.type in ("float", float) and isinstance(getattr(self, name), float)}
        if not_finite := sorted(name for name, value in numbers.items() if not math.isfinite(value)):
            raise ValueError(f"RafaConfig: {', '.join(not_finite)} must be a finite number, got "
                             + ", ".join(f"{name}={numbers[name]}" for name in not_finite))
        if self.llm_weight < 0 or self.max_llm_calls < 0 or self.max_seconds <= 0:
            raise ValueError(f"RafaConfig: weights and budgets must be positive ({self})")
        if self.imagine_weight < 0 or self.imagine_depth < 1:
            raise ValueError(f"RafaConfig: imagine_weight must be >= 0 and imagine_depth >= 1 ({self})")
        if not self.feasibility_model and self.lookahead:
            raise ValueError("RafaConfig.feasibility_model=False needs lookahead=False: the lookahead plans "
                             "with the skill model's preconditions")
        if self.world_model and not self.imagination:
            raise ValueError(f"RafaConfig.world_model={self.world_model!r} is only read with imagination on "
                             "(an imagining agent: rafa-imagine, rafa-dream, greedy-blind-imagine, or --imagine)")
        if self.world_model and not (Path(self.world_model) / "config.json").is_file():
            raise ValueError(f"RafaConfig.world_model: {self.world_model} is not a world-model checkpoint folder "
                             "(config.json + model.safetensors, e.g. RUN/checkpoint from `embodia train world-model`)")
        if self.planner not in ("critic-led", "llm-led") or (self.planner == "llm-led" and not self.lookahead):
            raise ValueError(f"RafaConfig.planner must be 'critic-led' or 'llm-led' (a lookahead planner: not with "
                             f"the greedy or open-loop ablations), got {self.planner!r}")
        if self.perception not in ("privileged", "pixels") or (self.perception == "pixels" and self.imagination):
            raise ValueError(f"RafaConfig.perception must be 'privileged' or 'pixels' (pixels without imagination: "
                             f"the world model's imagined state is not built from pixels yet), got {self.perception!r}")
        if self.skills not in SCRIPTED_SKILLS:
            from vla.registry import is_policy_reference, policy_names  # torch loads only for a learned policy

            if not is_policy_reference(self.skills):
                raise ValueError(f"RafaConfig.skills must be 'expert', 'expert-view', 'learned', a registered policy "
                                 f"({', '.join(policy_names())}) or an existing checkpoint folder, got {self.skills!r}")
        if self.attempt_budget < 0 or (self.attempt_budget and self.skills not in SCRIPTED_SKILLS):
            raise ValueError(f"RafaConfig.attempt_budget must be >= 0 and needs skills='expert' (the learned "
                             f"policy has no requirement check to skip), got {self.attempt_budget} with "
                             f"skills={self.skills!r}")


class RafaAgent:
    """Pursues goals in one persistent env; memory and learned distrust carry across goals.

    ``run`` yields its steps; whoever drives it follows them with :class:`~agents.steps.StepCallbacks`
    (``run_episode``'s log, statistics and display), the one callback mechanism.
    """

    def __init__(self, env: gym.Env, llm: LLM | None, memory: Memory | None = None,
                 config: RafaConfig | None = None) -> None:
        self.env = env
        self.llm = llm
        self.memory = memory if memory is not None else Memory()
        self.config = config or RafaConfig()
        self.model = SkillModel(SKILLS)
        self.strategy = strategy_for(self.config)
        runner = make_skill_runner(self.config.skills, self.config.attempt_budget, self.config.threat_handback)
        self.perception, skill_env, look = None, env, LookTool(env)
        if self.config.perception == "pixels":  # the belief from the frame; the skills get the env they act in
            from agents.perception import PixelLookTool, pixel_parts

            self.perception, skill_env, runner = pixel_parts(env, llm, runner, self.config.vlm)
            look = PixelLookTool(self.perception)
        self.tools = ToolRegistry([ActTool(skill_env, runner), look, RecallTool(self.memory)])
        self.imagination = None
        self.foresight: Foresight | None = None
        if self.config.imagination:
            from agents.imagination import DEFAULT_CHECKPOINT, Imagination, ImagineTool  # torch only when asked

            self.imagination = Imagination(self.config.world_model or DEFAULT_CHECKPOINT,
                                           calibrate=self.config.imagine_calibrated)
            self.tools.register(ImagineTool(env, self.imagination))
            self.foresight = Foresight(self.imagination, env, self.memory, veto=self.config.imagine_veto,
                                       weight=self.config.imagine_weight, depth=self.config.imagine_depth)
        # What the model learned from contradicted predictions (rebuilt from memory on resume).
        self.distrust: set[str] = {r.data["distrust"] for r in self.memory.of_kind("reflection")
                                   if r.data.get("distrust")}
        self.placed: set[str] = set()
        self.failed_unchanged: set[str] = set()  # skills that failed since the last success or item change

    # --- learn: the belief ---
    def belief(self) -> Belief:
        remembered = self._remembered_stations()
        if self.perception is not None:
            return self.perception.belief(remembered, self.config.threat_radius)
        world = self.env.unwrapped
        visible = self._things_within(NEAR_RADIUS)
        threats = self._things_within(self.config.threat_radius) & HOSTILE
        return Belief(inventory=dict(world.inventory), reachable=frozenset(visible | remembered),
                      threats=frozenset(threats), night=daylight_phase(world.daylight) != "day",
                      achievements=dict(world.achievements))

    def _remembered_stations(self) -> set[str]:
        """Stations placed earlier that still count as within reach once out of sight.

        Only the map-reading scripted skills can walk back to a table they no longer see; a skill that sees the
        frame alone (``expert-view``, every learned policy) cannot, and a ``make`` sent on that memory spends its
        whole budget looking. For those the planner re-places the station, as it does after such a failure.
        """
        return self.placed - self.distrust if SCRIPTED_SKILLS.get(self.config.skills) == "map" else set()

    def _things_within(self, radius: int) -> set[str]:
        """Names of materials and creatures within ``radius`` tiles (Chebyshev) of the player."""
        world = self.env.unwrapped
        x, y = world.player_pos
        window = world.semantic[max(0, x - radius): x + radius + 1, max(0, y - radius): y + radius + 1]
        return {SEMANTIC_NAMES[int(i)] for i in np.unique(window) if int(i) in SEMANTIC_NAMES}

    # --- the loop ---
    def run(self, goal: Goal) -> Iterator[Step]:
        """Pursue ``goal``; yields every planning, action and final step (the last one is final)."""
        cfg = self.config
        world = self.env.unwrapped
        start_counts = self._achievements()
        started, env_steps, decisions, llm_decisions = time.perf_counter(), 0, 0, 0
        self.memory.add("goal", f"goal: {goal.phrase}", step=world.steps, goal=goal.achievement)
        if isinstance(self.strategy, OpenLoop):
            self.strategy.reset()
        final: FinalStep | None = None
        while final is None:
            exhausted = self._exhausted(decisions, env_steps, time.perf_counter() - started)
            if exhausted:
                final = self._final(goal, False, exhausted, env_steps, decisions)
                break
            planning = self._plan(goal, decisions, use_llm=llm_decisions < cfg.max_llm_calls)
            llm_decisions += planning.llm_ms > 0  # decisions that consulted the LLM, retries included
            decisions += 1
            yield planning
            if planning.chosen is None:
                final = self._final(goal, False, planning.error or "no feasible plan", env_steps, decisions)
                break
            action = self._act(goal, decisions, planning.chosen.first, cfg.max_env_steps - env_steps,
                               planning.imagined)
            env_steps += action.env_steps
            yield action
            if goal.is_achieved(start_counts, self._achievements()):
                final = self._final(goal, True, f"{goal.achievement} unlocked", env_steps, decisions)
            elif action.data.get("exception"):
                final = self._final(goal, False, f"env error: {action.outcome}", env_steps, decisions, action.error)
            elif action.data.get("terminated"):
                final = self._final(goal, False, "the agent died", env_steps, decisions)
            elif action.data.get("truncated"):
                final = self._final(goal, False, "the episode reached its step limit", env_steps, decisions)
        yield final

    def _achievements(self) -> dict[str, int]:
        """Achievement counts: the env's, or in pixel mode the unlocks the skills reported (no frame shows them)."""
        return dict(self.perception.achievements if self.perception is not None else self.env.unwrapped.achievements)

    def _exhausted(self, decisions: int, env_steps: int, seconds: float) -> str | None:
        """Which budget (if any) is used up, in words."""
        cfg = self.config
        if decisions >= cfg.max_decisions:
            return f"decision budget of {cfg.max_decisions} used up"
        if env_steps >= cfg.max_env_steps:
            return f"env-step budget of {cfg.max_env_steps} used up"
        if seconds > cfg.max_seconds:
            return f"time budget of {cfg.max_seconds:.0f} s used up"
        return None

    def _final(self, goal: Goal, success: bool, reason: str, env_steps: int, decisions: int,
               error: str | None = None) -> FinalStep:
        self.memory.add("note", f"goal {goal.phrase}: {'done' if success else 'failed'} ({reason})",
                        step=self.env.unwrapped.steps, goal=goal.achievement, success=success)
        return FinalStep(goal=goal.phrase, success=success, reason=reason, env_steps=env_steps,
                         decisions=decisions, error=error)

    # --- reason for future ---
    def _plan(self, goal: Goal, index: int, use_llm: bool) -> PlanningStep:
        cfg = self.config
        started = time.perf_counter()
        belief = self.belief()
        state = self.tools.call("look", {}).text
        if isinstance(self.strategy, OpenLoop):
            return self._open_loop(goal, index, belief, state)
        shortlist = self.options(goal, belief)
        if isinstance(self.strategy, LlmLed) and shortlist:
            return self._llm_led(goal, index, belief, state, shortlist, use_llm, started)
        if not shortlist:
            return PlanningStep(index=index, goal=goal.phrase, state=state, candidates=[], chosen=None,
                                thought="nothing feasible", error=f"no plan reaches {goal.achievement} from here")
        prompt = self._prompt(goal, state, [c.first for c in shortlist])
        llm_ms, error = 0.0, None
        if self.llm is not None and use_llm and llm_can_change(shortlist, cfg.llm_weight):
            llm_started = time.perf_counter()
            logprobs, error = llm_prior(self.llm, prompt, [c.first for c in shortlist], cfg.llm_retries)
            llm_ms = (time.perf_counter() - llm_started) * 1000
            if logprobs is not None:
                apply_prior(shortlist, logprobs, cfg.llm_weight)
        if self.foresight is not None:
            self.foresight.score_near_ties(shortlist)
        ranked = sorted(shortlist, key=lambda c: -c.value)
        chosen, revisions, imagined, vetoed = (self.foresight.choose(ranked) if self.foresight is not None
                                               else (ranked[0], [], None, []))
        to_go = f" ({chosen.cost_to_go:.0f} skill calls to go)" if math.isfinite(chosen.cost_to_go) else ""
        thought = f"{goal.phrase}: plan {' → '.join(chosen.future)}{to_go}; doing {chosen.first!r} now"
        if revisions:
            thought = f"{'; '.join(revisions)}. {thought}"
        return PlanningStep(index=index, goal=goal.phrase, state=state, candidates=shortlist, chosen=chosen,
                            thought=thought, llm_ms=llm_ms, decision_ms=(time.perf_counter() - started) * 1000,
                            error=error, prompt=prompt, prompt_version=prompt_version("planner"),
                            imagined=imagined, vetoed=vetoed)

    def _llm_led(self, goal: Goal, index: int, belief: Belief, state: str, shortlist: list[Candidate],
                 use_llm: bool, started: float) -> PlanningStep:
        """The llm-led planner's decision (``agents.llm_led``): the LLM as proposer, model and critic."""
        excluded = set() if self.config.retry_unchanged else self.failed_unchanged
        feasible = [s for s in self.model.skills if s not in excluded and self.model.check(belief, s)[0]]
        variables = {"goal": goal.phrase, "state": state,
                     "reflections": [r.text for r in self.memory.recent("reflection", self.config.lessons_shown)],
                     "recent": [r.text for r in self.memory.recent("transition", self.config.recent_steps)]}
        decision = decide(self.strategy, self.llm if use_llm else None, self.model, belief, goal.achievement,
                          variables, functools.partial(self._prompt, goal, state), shortlist, feasible,
                          self.config.llm_retries)
        return PlanningStep(index=index, goal=goal.phrase, state=state, candidates=decision.candidates,
                            chosen=decision.chosen, thought=decision.thought, llm_ms=decision.llm_ms,
                            decision_ms=(time.perf_counter() - started) * 1000, error=decision.error,
                            prompt=decision.prompt, prompt_version=decision.prompt_version)

    def options(self, goal: Goal, belief: Belief) -> list[Candidate]:
        """The strategy's shortlist for this decision; the feedback rule keeps out what failed unchanged."""
        recent_failures = [r.data.get("skill") for r in self.memory.recent("transition", 5) if not r.data.get("ok")]
        excluded = set() if self.config.retry_unchanged else self.failed_unchanged
        return self.strategy.options(self.model, belief, goal.achievement, recent_failures, excluded)

    def _open_loop(self, goal: Goal, index: int, belief: Belief, state: str) -> PlanningStep:
        """The open-loop strategy's next step: its fixed plan, never revised."""
        future = self.strategy.next_future(self.model, belief, goal.achievement)
        if not future:
            return PlanningStep(index=index, goal=goal.phrase, state=state, candidates=[], chosen=None,
                                thought="plan exhausted", error="the open-loop plan ended without reaching the goal")
        chosen = Candidate(future=future, cost_to_go=float(len(future)), critic=-len(future), value=-len(future))
        return PlanningStep(index=index, goal=goal.phrase, state=state, candidates=[chosen], chosen=chosen,
                            thought=f"{goal.phrase}: following the fixed plan; doing {future[0]!r} now")

    def _prompt(self, goal: Goal, state: str, options: list[str]) -> list[dict[str, str]]:
        """The planner prompt for this decision; logged with every decision, so traces can train the planner."""
        return render_messages(
            "planner", goal=goal.phrase, state=state, options=options,
            reflections=[r.text for r in self.memory.recent("reflection", self.config.lessons_shown)],
            recent=[r.text for r in self.memory.recent("transition", self.config.recent_steps)],
        )

    # --- act for now, then update ---
    def _act(self, goal: Goal, index: int, skill: str, steps_left: int,
             imagined: dict | None = None) -> ActionStep:
        world = self.env.unwrapped
        before = self.belief()
        prediction, _ = self.model.predict(before, skill)
        budget = min(SKILLS[skill].budget, steps_left)
        result = self.tools.call("act", {"skill": skill, "budget": budget})
        if self.perception is not None:
            self.perception.update(result)
        unlocked = list(result.data.get("achievements_unlocked", []))
        matched, actual = compare(prediction, result)
        if result.ok and SKILLS[skill].verb == "place":
            self.placed.add(SKILLS[skill].target)
        items_changed = any(item not in VITALS for item in result.data.get("inventory_delta", {}))
        if result.ok or items_changed:
            self.failed_unchanged.clear()
        else:
            self.failed_unchanged.add(skill)
        reflection = None if matched else self._reflect(goal, skill, prediction, result, actual)
        self.memory.add("transition", f"{skill}: {actual}", step=world.steps, goal=goal.achievement,
                        skill=skill, ok=result.ok, predicted=prediction.describe(), actual=actual, matched=matched)
        if imagined is not None:  # the RIG record: what imagination foresaw next to what happened
            from agents.imagination import imagined_vs_real

            imagined = imagined_vs_real(imagined, result.ok, result.data.get("inventory_delta", {}), unlocked)
        return ActionStep(index=index, tool="act", arguments={"skill": skill, "budget": budget},
                          predicted=prediction.describe(), ok=result.ok, outcome=actual, matched=matched,
                          env_steps=int(result.data.get("steps", 0)), achievements=unlocked, reflection=reflection,
                          error=result.error, data=result.data, imagined=imagined)

    def _reflect(self, goal: Goal, skill: str, prediction: Prediction, result: ToolResult, actual: str) -> str:
        """Write the lesson of a contradicted prediction to memory; a named station is distrusted from now on."""
        reflection = reflect(skill, prediction, result, actual)
        if reflection.distrust:
            self.distrust.add(reflection.distrust)
        self.memory.add("reflection", reflection.text, step=self.env.unwrapped.steps, goal=goal.achievement,
                        skill=skill, distrust=reflection.distrust)
        return reflection.text
