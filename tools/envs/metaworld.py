"""Meta-World tasks as a gymnasium env with 64x64 pixels and their scripted experts (DESIGN §3).

A Sawyer arm on a table, 4 continuous actions (xyz end-effector delta and gripper effort, each in
[-1, 1]). ``MetaWorldEnv(task)`` builds one MT1 task (``reach``, ``push``, ...) goal-observable,
as MT1 does, and draws the object/goal placement from the task's own random reset space with a
generator seeded through ``reset(seed=...)``: the same seed gives the same placement, images and
trajectory; held-out seeds give placements never seen in training.

Observations match the Crafter env's layout: ``{"image": (64, 64, 3) uint8, "state": (39,) float32}``,
where ``state`` is Meta-World's own observation (hand xyz, gripper opening, object poses, the same
of the previous step, goal xyz) so the scripted expert (``ScriptedExpert``) can act from it.
Frames come from the ``corner`` camera, which renders upside down, so rows are flipped; shadows and
multisampling are off (64x64 needs neither), which makes rendering ~7x faster.

Offscreen rendering needs an OpenGL platform: ``MUJOCO_GL`` defaults to ``egl`` here (libEGL from
the system; override with ``MUJOCO_GL=osmesa`` where only OSMesa exists). It must be set before
mujoco is imported, hence the assignment above the imports.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np

try:
    import metaworld.policies
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(f"{exc}; the Meta-World arm needs pip install 'embodia[metaworld]'") from exc
except (AttributeError, ImportError, OSError) as exc:  # how mujoco reports a missing GL library at import
    raise ImportError(f"mujoco cannot set up offscreen rendering with MUJOCO_GL={os.environ['MUJOCO_GL']!r} "
                      f"({exc!r}): 'egl' needs libEGL (Debian libegl1), 'osmesa' needs libOSMesa (libosmesa6)") from exc

CAMERA = "corner"
ACTION_DIM = 4
STATE_DIM = 39


@dataclass(frozen=True)
class Task:
    """One Meta-World task: its env id, its scripted expert class and the instruction a policy reads."""

    env_name: str
    expert: str
    instruction: str


#: Tasks whose scripted experts solve 10/10 seeds in 36-106 steps (measured; see ``tests/tools``).
TASKS: dict[str, Task] = {
    "reach": Task("reach-v3", "SawyerReachV3Policy", "reach the goal"),
    "push": Task("push-v3", "SawyerPushV3Policy", "push the puck to the goal"),
    "drawer-close": Task("drawer-close-v3", "SawyerDrawerCloseV3Policy", "close the drawer"),
    "door-open": Task("door-open-v3", "SawyerDoorOpenV3Policy", "open the door"),
    "button-press": Task("button-press-v3", "SawyerButtonPressV3Policy", "press the button"),
}


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``; an unknown name raises listing the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown Meta-World task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


class MetaWorldEnv(gymnasium.Env):
    """One Meta-World MT1 task with 64x64 upright RGB + 39-dim state, episodes of ``max_steps``.

    ``terminated`` becomes True on the first step where the task reports success (the episode's
    goal is reached); ``truncated`` when ``max_steps`` steps pass without it. ``render()`` returns
    the same upright frame the observation holds.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "reach", size: int = 64, max_steps: int = 200,
                 render_mode: str | None = "rgb_array") -> None:
        self.task_name, self.task = task, get_task(task)
        if not 1 <= max_steps <= 500:  # Meta-World refuses to step past its 500-step path length
            raise ValueError(f"max_steps must be in 1..500, got {max_steps=}")
        self.max_steps, self.render_mode = max_steps, render_mode
        env = ALL_V3_ENVIRONMENTS[self.task.env_name](render_mode="rgb_array", camera_name=CAMERA,
                                                       width=size, height=size)
        env.model.vis.quality.shadowsize = 0
        env.model.vis.quality.offsamples = 0
        env._partially_observable = False  # MT1 shows the goal in the state
        del env.sawyer_observation_space  # cached for the partially observable layout
        env._set_task_called = True
        env._freeze_rand_vec = False  # a new placement every reset ...
        env.seeded_rand_vec = True  # ... drawn from env.np_random, which reset() seeds
        self._env = env
        space = env.sawyer_observation_space
        self.observation_space = gymnasium.spaces.Dict({
            "image": gymnasium.spaces.Box(0, 255, (size, size, 3), np.uint8),
            "state": gymnasium.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                          dtype=np.float32),
        })
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._steps = 0

    @property
    def instruction(self) -> str:
        return self.task.instruction

    @property
    def steps(self) -> int:
        return self._steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._env.seed(int(self.np_random.integers(0, 2**31 - 1)))
        state, _ = self._env.reset()
        self._steps = 0
        return self._obs(state), {"success": False, "task": self.task_name}

    def step(self, action: np.ndarray):
        action = np.asarray(action, np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action shape {action.shape} != env action space shape ({ACTION_DIM},)")
        state, reward, _, _, info = self._env.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        success = bool(info["success"])
        out = {"success": success, "task": self.task_name, "near_object": float(info["near_object"])}
        return self._obs(state), float(reward), success, self._steps >= self.max_steps and not success, out

    def render(self) -> np.ndarray:
        return self._env.render()[::-1].copy()  # the corner camera renders upside down

    def close(self) -> None:
        self._env.close()

    def describe(self, info: dict[str, Any] | None = None) -> str:
        """The planner's text view, from the 39-dim state's documented layout: hand xyz, gripper opening,
        the first object's xyz, and the goal's xyz (its last three values)."""
        state = self._env._get_obs()
        hand, gripper, obj, goal = state[0:3], float(state[3]), state[4:7], state[-3:]
        gap = float(np.linalg.norm(hand - obj))
        return (f"Task: {self.instruction}. Hand at ({hand[0]:.2f}, {hand[1]:.2f}, {hand[2]:.2f}), gripper "
                f"{'open' if gripper > 0.5 else 'closed'} ({gripper:.2f}); object at ({obj[0]:.2f}, {obj[1]:.2f}, "
                f"{obj[2]:.2f}), {gap:.2f} m from the hand; goal at ({goal[0]:.2f}, {goal[1]:.2f}, {goal[2]:.2f}). "
                f"Step {self._steps}/{self.max_steps}.")

    def _obs(self, state: np.ndarray) -> dict[str, np.ndarray]:
        space = self.observation_space["state"]
        return {"image": self.render(), "state": np.clip(state, space.low, space.high).astype(np.float32)}


class ScriptedExpert:
    """Meta-World's hand-written policy for a task (``metaworld.policies.Sawyer<Task>V3Policy``), clipped to
    the action space so recorded actions stay in [-1, 1] (the env clips the rest anyway)."""

    def __init__(self, task: str) -> None:
        self._policy = getattr(metaworld.policies, get_task(task).expert)()

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with warnings.catch_warnings():  # "Constant(s) may be too high": the clipping below is intended
            warnings.simplefilter("ignore", UserWarning)
            action = self._policy.get_action(np.asarray(obs["state"], np.float64))
        return np.clip(action, -1.0, 1.0).astype(np.float32)
