"""BabyAI (minigrid) as an embodia env: language instructions, a text view, and the BabyAI bot as expert.

BabyAI levels hand the agent an instruction ("put the yellow key next to the purple box") and reward it
once the instruction's verifier passes. That makes it the cheapest world with real language goals: ~5,000
steps/s and a bot (``minigrid.utils.baby_ai_bot.BabyAIBot``) that solves every level, so demonstrations and
labels for any state are free, as the scripted skills are for Crafter.

The observation follows DESIGN §3: ``image`` is a 64×64 RGB frame of the whole grid (what a policy or a
VLM sees; rescaled by nearest neighbour for grids larger than 8×8), ``state`` the agent's 7×7×3 symbolic
egocentric view flattened, plus its direction and what it carries. ``describe`` is the planner's text view,
built from the same egocentric view (the agent's own field of view, not the whole map), so the BabyAI planner
is no more privileged than the instruction-following policies it drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np

#: Levels with the instruction family each exercises (the issue's GoTo / Pickup / Open / PutNext / Synth).
LEVELS: dict[str, str] = {
    "goto-obj": "BabyAI-GoToObj-v0",
    "goto-local": "BabyAI-GoToLocal-v0",
    "pickup-loc": "BabyAI-PickupLoc-v0",
    "open-door": "BabyAI-OpenDoor-v0",
    "put-next-local": "BabyAI-PutNextLocal-v0",
    "synth": "BabyAI-Synth-v0",
    "boss": "BabyAI-BossLevel-v0",
}
ACTION_NAMES: tuple[str, ...] = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
FRAME_SIZE = 64
_VIEW = 7
_DIRECTIONS = ("east", "south", "west", "north")


@dataclass(frozen=True)
class Level:
    """A named BabyAI level."""

    name: str
    env_id: str


def get_level(name: str) -> Level:
    """The level called ``name`` (short name or a registered ``BabyAI-…`` id).

    Raises:
        KeyError: listing the short names.
    """
    if name in LEVELS:
        return Level(name, LEVELS[name])
    if name.startswith("BabyAI-") and name in gymnasium.envs.registry:
        return Level(name, name)
    raise KeyError(f"unknown BabyAI level {name!r}; known: {', '.join(LEVELS)} (or any registered BabyAI-… id)")


def _ensure_registered() -> None:
    import minigrid  # noqa: F401  (registering the BabyAI-* ids is an import side effect)


class BabyAIEnv(gymnasium.Env):
    """One BabyAI level with a dict observation, the mission as instruction, and ``describe``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, level: str = "goto-obj", max_steps: int | None = None,
                 render_mode: str | None = "rgb_array") -> None:
        _ensure_registered()
        self.level = get_level(level)
        kwargs = {"max_steps": max_steps} if max_steps else {}
        self._env = gymnasium.make(self.level.env_id, **kwargs)
        self.render_mode = render_mode
        self.action_space = gymnasium.spaces.Discrete(len(ACTION_NAMES))
        state_size = _VIEW * _VIEW * 3 + 2
        self.observation_space = gymnasium.spaces.Dict({
            "image": gymnasium.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), np.uint8),
            "state": gymnasium.spaces.Box(-1.0, 10.0, (state_size,), np.float32),
        })
        self._symbolic: np.ndarray = np.zeros((_VIEW, _VIEW, 3), np.uint8)
        self._steps = 0

    # --- gymnasium API ---
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, _ = self._env.reset(seed=seed)
        self._symbolic, self._steps = obs["image"], 0
        return self._obs(), self._info(0.0, success=False)

    def step(self, action: int):
        obs, reward, terminated, truncated, _ = self._env.step(int(action))
        self._symbolic = obs["image"]
        self._steps += 1
        return self._obs(), float(reward), bool(terminated), bool(truncated), self._info(reward, success=reward > 0)

    def render(self) -> np.ndarray:
        return self._frame()

    def close(self) -> None:
        self._env.close()

    # --- views ---
    @property
    def unwrapped_minigrid(self) -> Any:
        """The minigrid env itself (for the bot); the agent's code reads the observation, not this."""
        return self._env.unwrapped

    @property
    def instruction(self) -> str:
        return str(self.unwrapped_minigrid.mission)

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def carrying(self) -> str | None:
        held = self.unwrapped_minigrid.carrying
        return f"{held.color} {held.type}" if held is not None else None

    def visible_objects(self) -> list[tuple[str, int, int]]:
        """Objects in the 7×7 egocentric view: (``"red ball"``, steps ahead, steps right; negative = left)."""
        from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

        found = []
        # The view's agent sits at column 3 of the last row, facing "up" the columns of the array's transpose.
        for x in range(_VIEW):
            for y in range(_VIEW):
                kind = IDX_TO_OBJECT[int(self._symbolic[x, y, 0])]
                if kind in ("key", "ball", "box", "door", "goal", "lava"):
                    name = f"{IDX_TO_COLOR[int(self._symbolic[x, y, 1])]} {kind}"
                    if kind == "door":
                        name += (" (open)", " (closed)", " (locked)")[int(self._symbolic[x, y, 2])]
                    found.append((name, _VIEW - 1 - y, x - _VIEW // 2))
        return sorted(found, key=lambda item: (abs(item[1]) + abs(item[2]), item[0]))

    def describe(self, info: dict[str, Any] | None = None) -> str:
        """What the agent sees, in words: the instruction, objects in view with offsets, what it carries."""
        parts = [f"Instruction: {self.instruction}."]
        seen = []
        for name, ahead, right in self.visible_objects():
            where = [f"{ahead} ahead"] if ahead else []
            if right:
                where.append(f"{abs(right)} {'right' if right > 0 else 'left'}")
            seen.append(f"{name} ({', '.join(where) or 'here'})")
        parts.append("In view: " + ("; ".join(seen) if seen else "nothing but walls and floor") + ".")
        parts.append(f"Carrying: {self.carrying or 'nothing'}.")
        parts.append(f"Facing {_DIRECTIONS[int(self.unwrapped_minigrid.agent_dir)]}.")
        return " ".join(parts)

    # --- internals ---
    def _frame(self) -> np.ndarray:
        frame = self.unwrapped_minigrid.get_frame(highlight=False, tile_size=8)
        if frame.shape[:2] != (FRAME_SIZE, FRAME_SIZE):
            rows = np.arange(FRAME_SIZE) * frame.shape[0] // FRAME_SIZE
            cols = np.arange(FRAME_SIZE) * frame.shape[1] // FRAME_SIZE
            frame = frame[rows][:, cols]
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def _obs(self) -> dict[str, np.ndarray]:
        held = self.unwrapped_minigrid.carrying
        extra = np.array([float(self.unwrapped_minigrid.agent_dir), 1.0 if held is not None else 0.0], np.float32)
        state = np.concatenate([self._symbolic.astype(np.float32).reshape(-1), extra])
        return {"image": self._frame(), "state": state}

    def _info(self, reward: float, *, success: bool) -> dict[str, Any]:
        return {"instruction": self.instruction, "success": bool(success), "reward": float(reward)}


class BabyAIExpert:
    """The BabyAI bot: re-plans from the env's full state every step, so it can label any state."""

    def __init__(self, env: BabyAIEnv) -> None:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        self.env = env
        self._bot = BabyAIBot(env.unwrapped_minigrid)

    def __call__(self, obs: dict[str, np.ndarray] | None = None) -> int:
        return int(self._bot.replan())


def run_expert(env: BabyAIEnv, seed: int, max_steps: int = 500) -> tuple[bool, int]:
    """Solve one episode with the bot: (success, env steps)."""
    env.reset(seed=seed)
    expert = BabyAIExpert(env)
    for step in range(1, max_steps + 1):
        _, _, terminated, truncated, info = env.step(expert())
        if terminated or truncated:
            return bool(info["success"]), step
    return False, max_steps
