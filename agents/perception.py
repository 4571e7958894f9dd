"""Where the agent's belief comes from: ``privileged`` (the env's state) or ``pixels`` (the frame alone).

In pixel mode the agent holds a :class:`~tools.envs.pixels.PixelEnv`, so the belief cannot read the world.
:class:`PixelPerception` reads each frame with the VLM's vision encoder: its *structured reading* (the
supervised heads the VLM's image tokens are built on: the class of every view tile, the count in every
status-bar slot, light, facing). The belief uses that reading rather than the language model's text
because it is exact where it is right, costs ~2 ms per frame instead of seconds per generated answer on
this CPU, and needs no parsing; the VLM answers chat questions from the same frame
(:meth:`PixelPerception.answer`). What no frame shows comes from memory: achievements (the skills'
reported unlocks) and stations the agent placed (``RafaAgent.placed``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.llm.base import LLM
from agents.skill_model import Belief
from tools.base import Tool, ToolResult
from tools.envs.crafter import ACHIEVEMENTS, ITEM_NAMES, daylight_phase
from tools.envs.pixels import PixelEnv
from tools.skills.crafter import NEAR_RADIUS
from tools.vlm_data import ITEMS, SEEN, FrameReading, answer, check_frame, parse_question

PERCEPTIONS = ("privileged", "pixels")
#: The shipped VLM (model card in its README.md); its encoder is the pixel reader when --llm is not the VLM.
DEFAULT_VLM = Path(__file__).resolve().parent / "adapters" / "embodia-vlm"
HOSTILE = frozenset({"zombie"})
MAX_RETRIES = 1


def check_pixel_llm(llm: LLM | None) -> None:
    """Pixel perception needs a planner that takes images (or none at all); say which can."""
    if llm is not None and not llm.capabilities.images:
        raise ValueError(f"--perception pixels: the planner {llm.name} takes no images. Use "
                         "--llm transformers:embodia-vlm (the VLM trained here), an openai:MODEL server that "
                         "serves a vision model, or --llm none (the VLM's encoder reads the frame, no language model)")


def check_pixel_llm_spec(spec: str) -> None:
    """As :func:`check_pixel_llm`, from a "BACKEND:MODEL" spec before anything loads (``embodia eval``)."""
    from agents.llm import CAPABILITIES

    backend, _, model = spec.partition(":")
    vlm = backend == "transformers" and (model == "embodia-vlm" or (Path(model).expanduser() / "vlm.json").is_file())
    if not vlm and not (backend in CAPABILITIES and CAPABILITIES[backend].images):
        raise ValueError(f"--perception pixels: the planner {spec} takes no images. Use --llm transformers:embodia-vlm "
                         "(the VLM trained here), an openai:MODEL server that serves a vision model, or --llm none "
                         "(the VLM's encoder reads the frame, no language model)")


def load_reader(llm: LLM | None, vlm: str = ""):
    """The vision encoder that reads frames: the planner's own when it is the embodia VLM, else the shipped one."""
    own = getattr(llm, "vlm", None)
    if own is not None:
        return own.encoder
    from tools.models.tile_encoder import VisionEncoder

    folder = Path(vlm) if vlm else DEFAULT_VLM
    if not (folder / "encoder" / "model.safetensors").is_file():
        raise FileNotFoundError(f"no VLM encoder at {folder / 'encoder'}: train one with "
                                "`python -m agents.vision.train` (make vlm-checkpoint)")
    return VisionEncoder.from_pretrained(folder / "encoder").eval()


class PixelPerception:
    """Belief and state text from the current frame plus memory; chat answers by the VLM."""

    def __init__(self, env: PixelEnv, llm: LLM | None, vlm: str = "") -> None:
        self.env, self.llm = env, llm
        self.reader = load_reader(llm, vlm)
        self.achievements: dict[str, int] = dict.fromkeys(ACHIEVEMENTS, 0)
        self.fallbacks: list[dict[str, Any]] = []  # VLM answers that left the schema, and what replaced them
        self._cache: tuple[bytes, FrameReading] | None = None

    def reading(self) -> FrameReading:
        frame = check_frame(self.env.frame())
        key = frame.tobytes()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.reader.read(frame))
        return self._cache[1]

    def belief(self, remembered: set[str], threat_radius: int) -> Belief:
        reading = self.reading()
        return Belief(inventory=dict(reading.inventory), reachable=frozenset(reading.within(NEAR_RADIUS) | remembered),
                      threats=frozenset(reading.within(threat_radius) & HOSTILE),
                      night=daylight_phase(reading.daylight) != "day", achievements=dict(self.achievements))

    def describe(self) -> str:
        return self.reading().describe([n for n in ACHIEVEMENTS if self.achievements[n] > 0])

    def update(self, result: ToolResult) -> None:
        """Remember the achievements a skill reported unlocking (no frame shows them)."""
        for name in result.data.get("achievements_unlocked", []):
            self.achievements[name] = self.achievements.get(name, 0) + 1

    def state_vector(self, image: np.ndarray) -> np.ndarray:
        """``obs["state"]`` as the frame shows it (``tools.envs.crafter.STATE_FIELDS``), for learned policies."""
        r = self.reader.read(image)
        return np.array([*(r.inventory[n] for n in ITEM_NAMES), *(min(self.achievements[n], 9) for n in ACHIEVEMENTS),
                         r.daylight, *r.facing, float(r.sleeping)], np.float32)

    # --- chat ---------------------------------------------------------------------------------------------
    def answer(self, question: str) -> str:
        """The VLM's answer from the frame: a trained question form is answered by constrained choice among
        its valid answers; a free question by generation, validated, retried once, else the encoder's reading."""
        frame = check_frame(self.env.frame())
        parsed = parse_question(question)
        reading = self.reading()
        if self.llm is None or not self.llm.capabilities.images:
            return answer(reading, *parsed) if parsed else reading.describe()
        parts = [{"type": "image", "image": frame}, {"type": "text", "text": question}]
        messages = [{"role": "user", "content": parts}]
        if parsed is not None:
            options = answer_options(*parsed, reading)
            scores = self.llm.score(messages, options)
            return options[int(np.argmax(scores))]
        for _attempt in range(1 + MAX_RETRIES):
            text = self.llm.generate(messages, max_tokens=48).strip()
            if on_schema(text):
                return text
        fallback = answer(reading, "see")
        self.fallbacks.append({"question": question, "reply": text, "fallback": fallback, "time": time.time()})
        return fallback


def answer_options(kind: str, subject: str, reading: FrameReading) -> list[str]:
    """Every valid answer of a question form: what constrained decoding chooses among."""
    if kind == "count":
        return [str(k) for k in range(10)]
    if kind == "near":
        found = answer(reading, "near", subject)
        return ["no", found] if found != "no" else ["no", f"yes, {subject.replace('_', ' ')} is in view"]
    if kind == "time":
        return ["day", "dusk", "night"]
    if kind == "facing":
        return sorted({*SEEN, "grass", "sand", "path", answer(reading, "facing")})
    return [answer(reading, kind, subject)]  # inventory, vitals, see: the encoder's reading, scored as one option


def on_schema(text: str) -> bool:
    """A free answer is usable when it names only things the game has and is not empty or a loop."""
    words = {w.strip(".,;:").lower() for w in text.split()}
    known = set(SEEN) | set(ITEMS) | {"grass", "sand", "path", "i", "see", "face", "step", "steps", "only", "and"}
    return bool(text) and len(text) < 240 and any(w in known for w in words)


class PixelLookTool(Tool):
    name = "look"
    description = "Describe what the frame shows: inventory, vitals, daylight, what is in view."
    inputs: dict = {}

    def __init__(self, perception: PixelPerception) -> None:
        super().__init__()
        self.perception = perception

    def forward(self) -> ToolResult:
        return ToolResult(ok=True, text=self.perception.describe())


class PerceivedPolicy:
    """A learned policy whose ``obs["state"]`` is read from the frame, never the env's: the unprivileged actor."""

    def __init__(self, policy: Any, perception: PixelPerception) -> None:
        self._policy, self._perception = policy, perception

    def act(self, obs: dict[str, np.ndarray], instruction: str) -> Any:
        image = obs["image"]
        return self._policy.act({"image": image, "state": self._perception.state_vector(image)}, instruction)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)


def pixel_parts(env: gym.Env, llm: LLM | None, runner: Any, vlm: str = "") -> tuple[PixelPerception, gym.Env, Any]:
    """For ``RafaAgent``: the perception, the env the skills act in, and the runner (a learned policy then
    sees its state through the frame). ``env`` must be a :class:`PixelEnv`."""
    if not isinstance(env, PixelEnv):
        raise TypeError(f"pixel perception needs the agent's env wrapped in tools.envs.pixels.PixelEnv, got {env}")
    check_pixel_llm(llm)
    perception = PixelPerception(env, llm, vlm)
    if hasattr(runner, "policy"):  # vla.skills.LearnedSkillRunner
        runner.policy = PerceivedPolicy(runner.policy, perception)
    return perception, env.skill_env, runner
