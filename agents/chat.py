"""A chat with an agent living in one persistent Crafter world.

The user types goals or questions, told apart by :mod:`agents.goals` (the same understanding as
``embodia run``); goals -- one, or the ordered parts of a compound request -- run the RAFA loop in the same
world and memory, questions are answered from the state, memory and the last decision. An unsure request
is asked back with numbered options, and the reply "2" (or the option's words) picks one. ``/save`` writes the
memory (JSONL) and the world as seed + action trace (JSON): the env is
deterministic, so replaying the trace restores the exact world without pickling.
Each file is written atomically, memory first, and ``world.json`` records how many memory records
belong to it: memory only grows within one world, so a save killed between the two files resumes as
the previous save.
A line the session cannot act on (too long, a path it cannot write) gets a reply; the session stays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from agents.chat_motion import flush_interventions, motion_command
from agents.goals import GoalResolution, is_question, request_too_long, resolve_goal
from agents.llm.base import LLM
from agents.memory import Memory
from agents.rafa import RafaAgent, RafaConfig
from agents.steps import FinalStep, PlanningStep, Step
from prompts import render_text
from tools.envs.crafter import ACHIEVEMENTS, ACTION_NAMES, ITEM_NAMES, CrafterEnv
from tools.envs.crafter_goals import Goal
from tools.episodes import LOG_FILE, VIDEO_FILE, EpisodeLog, RecordEpisode, VideoWriter, write_json_atomic

MEMORY_FILE = "memory.jsonl"
WORLD_FILE = "world.json"
HELP = ("Type a goal (e.g. 'get some stone', 'make a stone pickaxe'), several ('get wood and then place a table') "
        "or a question ('what do you have?', 'why did you do that?').\n"
        "Commands: /help, /look, /save [DIR], /reset [SEED], /motion PHRASE (correct RT-H skills), /quit. "
        "Ctrl-C interrupts the current goal.")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "one": 1, "two": 2, "three": 3}
_TOPICS = (
    ("why", ("why", "reason")),
    ("inventory", ("have", "inventory", "carry", "holding", "items", "own")),
    ("achievements", ("achievement", "unlocked", "accomplished")),
    ("history", ("did you", "done", "happened", "learn", "lesson", "remember")),
)


@dataclass
class ChatReply:
    """What the session says back; ``quit`` ends the chat."""

    text: str
    quit: bool = False


class ChatSession:
    """One world, one agent, one memory, many goals."""

    def __init__(self, llm: LLM | None, *, seed: int = 0, out_dir: str | Path, config: RafaConfig | None = None,
                 video: bool = True, resume: str | Path | None = None,
                 wrap_env: Callable[[gym.Env], gym.Env] | None = None) -> None:
        self.llm = llm
        self.wrap_env = wrap_env  # an observer around the agent's env: the web UI's live frame and interrupt
        self.config = config or RafaConfig()
        self.out_dir = Path(out_dir)
        self.video = video
        self.options: tuple[Goal, ...] = ()  # what an unsure request may have meant, until the next line
        self.last_planning: PlanningStep | None = None  # the latest decision, for "why did you do that?"
        self.log = EpisodeLog(self.out_dir / LOG_FILE)
        self.writer = VideoWriter(self.out_dir / VIDEO_FILE) if video else None
        memory, actions = Memory(), []
        if resume is not None:
            seed, actions, memory = read_saved(resume)
        self._start_world(seed, memory, actions)

    # --- world lifecycle ---
    def _start_world(self, seed: int, memory: Memory, actions: list[int]) -> None:
        self.seed = seed
        base: gym.Env = CrafterEnv(seed=seed, length=10**9)  # a chat world does not end by itself
        if self.config.imagination:  # imagination starts from the recent real frames
            from agents.imagination import ObservationHistory

            base = ObservationHistory(base)
        base.reset(seed=seed)
        for action in actions:  # replay a saved trace on the bare env (not re-logged)
            base.step(action)
        self.env = RecordEpisode(base, self.log, self.writer, ACTION_NAMES)
        self.env.actions = list(actions)
        acting = self.wrap_env(self.env) if self.wrap_env is not None else self.env
        if self.config.perception == "pixels":  # the agent and its answers see the frame only
            from tools.envs.pixels import PixelEnv

            acting = PixelEnv(acting)
        self.agent = RafaAgent(acting, self.llm, memory, self.config)
        self.log.write("world", seed=seed, replayed_actions=len(actions))

    def save(self, folder: str | Path | None = None) -> Path:
        folder = Path(folder).expanduser() if folder else self.out_dir  # '/save ~/x' means the home folder
        memory = self.agent.memory
        memory.save(folder / MEMORY_FILE)
        write_json_atomic(folder / WORLD_FILE, {"seed": self.seed, "actions": self.env.actions,
                                                "memory_records": len(memory.records)})
        return folder

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.log.close()

    # --- one user line ---
    def handle(self, line: str) -> Iterator[Step | ChatReply]:
        """React to one line: yields the agent's steps (for goals) and then a :class:`ChatReply`."""
        text = line.strip()
        if not text:
            return
        too_long = request_too_long(text)
        if too_long is not None:  # logged by its size and head: the rest is never read
            self.log.write("user", text=text[:200], chars=len(text))
            yield ChatReply(too_long)
            return
        self.log.write("user", text=text)
        options, self.options = self.options, ()
        picked = pick_option(text, options)
        if text.split()[0] == "/motion":  # an RT-H correction (agents.chat_motion)
            yield from motion_command(self, text.partition(" ")[2])
        elif text.startswith("/"):
            yield self._command(text)
        elif picked is not None:
            yield from self._run_goals((picked,))
        elif is_question(text):
            yield ChatReply(self.answer(text))
        else:
            yield from self._pursue(text)

    def _command(self, text: str) -> ChatReply:
        name, _, arg = text.partition(" ")
        if name in ("/quit", "/exit"):
            return ChatReply("bye", quit=True)
        if name == "/help":
            return ChatReply(HELP)
        if name == "/look":
            perception = self.agent.perception
            return ChatReply(perception.describe() if perception is not None else self.env.unwrapped.describe())
        if name == "/save":
            target = arg.strip() or None
            try:
                return ChatReply(f"saved memory and world to {self.save(target)}")
            except OSError as exc:
                return ChatReply(f"cannot save to {target or self.out_dir}: {exc.strerror or exc}. "
                                 "Nothing was lost; try /save DIR with a folder you can write.")
        if name == "/reset":
            try:
                seed = int(arg) if arg.strip() else self.seed
            except ValueError:
                return ChatReply(f"/reset takes an integer seed, got {arg!r}")
            if seed < 0:
                return ChatReply(f"/reset takes a seed >= 0, got {seed}")
            self._start_world(seed, Memory(), [])
            return ChatReply(f"new world (seed {seed}); memory cleared")
        return ChatReply(f"unknown command {name!r}. {HELP}")

    def answer(self, question: str) -> str:
        """Answer from the world state and memory (no free-form generation: the facts are exact)."""
        lowered = question.lower()
        topic = next((name for name, words in _TOPICS if any(w in lowered for w in words)), "state")
        if topic == "why":
            return self._why()
        if self.agent.perception is not None:  # pixel mode: the VLM answers from the frame
            return self.agent.perception.answer(question)
        world = self.env.unwrapped
        inventory = world.inventory
        memory = self.agent.memory
        return render_text(
            "answer", topic=topic, state=world.describe(),
            inventory=", ".join(f"{inventory[n]} {n}" for n in ITEM_NAMES[4:] if inventory[n] > 0),
            vitals=", ".join(f"{n} {inventory[n]}/9" for n in ITEM_NAMES[:4]),
            achievements=", ".join(n for n in ACHIEVEMENTS if world.achievements[n] > 0),
            history=[r.text for r in memory.recent("transition", 5)],
            lessons=[r.text for r in memory.recent("reflection", 2)],
        )

    def _why(self) -> str:
        """The reason for the latest decision, from the planner's own thought and the chosen plan."""
        step = self.last_planning
        if step is None:
            return "I have not decided anything yet in this world."
        plan = f"; I chose {' → '.join(step.chosen.future)}" if step.chosen is not None else ""
        return f"For '{step.goal}': {step.thought.strip() or 'no thought recorded'}{plan}."

    def _pursue(self, request: str) -> Iterator[Step | ChatReply]:
        resolution: GoalResolution = resolve_goal(request, self.llm)
        if resolution.kind == "unsure":
            self.options = resolution.options
            yield ChatReply(resolution.message + " (reply with its number)")
            return
        if not resolution.parts:
            yield ChatReply(resolution.message)
            return
        if len(resolution.parts) > 1 or resolution.skipped:  # say how the request was read before acting
            self.log.write("plan", request=request, parts=[g.achievement for g in resolution.parts],
                           skipped=list(resolution.skipped))
            yield ChatReply(f"Understood: {resolution.message}")
        yield from self._run_goals(resolution.parts)

    def _run_goals(self, goals: tuple[Goal, ...]) -> Iterator[Step | ChatReply]:
        """Pursue ``goals`` in order in this world, one reply per goal; stop at the first that fails."""
        for number, goal in enumerate(goals, 1):
            final: FinalStep | None = None
            for step in self.agent.run(goal):
                self.log.write(type(step).__name__, **step.to_record())
                if isinstance(step, FinalStep):
                    final = step
                elif isinstance(step, PlanningStep):
                    self.last_planning = step
                yield step
            verdict = "Done" if final.success else "I could not do it"
            part = f" (part {number}/{len(goals)})" if len(goals) > 1 else ""
            yield ChatReply(f"{verdict}{part}: {final.goal} ({final.reason}, {final.env_steps} steps).")
            corrected = flush_interventions(self)  # steps acted under a /motion typed before the goal
            if corrected is not None:
                yield ChatReply(f"Steps acted under your /motion correction are logged in {corrected}.")
            if not final.success and number < len(goals):
                rest = ", ".join(g.phrase for g in goals[number:])
                yield ChatReply(f"Stopped: the later parts ({rest}) need this one.")
                return


def pick_option(text: str, options: tuple[Goal, ...]) -> Goal | None:
    """The option an answer to "did you mean 1) … 2) …?" picks: its number, 'the second', or its words."""
    if not options:
        return None
    words = re.findall(r"[a-z0-9]+", text.lower())
    for word in words[:3]:
        number = int(word) if word.isdigit() else _ORDINALS.get(word)
        if number is not None and 1 <= number <= len(options) and len(words) <= 3:
            return options[number - 1]
    lowered = text.lower().strip(" .!")
    return next((g for g in options if lowered in (g.phrase, g.achievement)), None)


def read_saved(folder: str | Path) -> tuple[int, list[int], Memory]:
    """Seed, action trace and memory of a folder written by ``/save``; ValueError/FileNotFoundError name
    the file and what is wrong with it (checked before any world is built)."""
    world_file, memory_file = Path(folder) / WORLD_FILE, Path(folder) / MEMORY_FILE
    if not world_file.is_file():
        raise FileNotFoundError(f"{world_file} not found: resume from a folder written by /save")
    try:
        world = json.loads(world_file.read_text(encoding="utf-8"))
        seed, actions = int(world["seed"]), [int(a) for a in world["actions"]]
        kept = world.get("memory_records")
        kept = None if kept is None else int(kept)
    except OSError as exc:
        raise ValueError(f"cannot read {world_file}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{world_file} is not a saved world ({type(exc).__name__}: {exc})") from exc
    if seed < 0:
        raise ValueError(f"{world_file}: seed must be >= 0, got {seed}")
    bad = next((a for a in actions if not 0 <= a < len(ACTION_NAMES)), None)
    if bad is not None:
        raise ValueError(f"{world_file}: action {bad} is out of range (0-{len(ACTION_NAMES) - 1}); "
                         "the file is damaged or not from this version")
    try:
        memory = Memory.load(memory_file) if memory_file.exists() else Memory()
    except OSError as exc:
        raise ValueError(f"cannot read {memory_file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{memory_file} is not a saved memory ({exc})") from exc
    if kept is not None and len(memory.records) > kept:  # a save killed after memory, before world
        memory = Memory(memory.records[:kept])
    return seed, actions, memory
