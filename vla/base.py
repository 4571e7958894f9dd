"""The policy contract every VLA in ``vla/`` follows (DESIGN §6).

A policy maps (observation, instruction) to a chunk of actions. ``act`` hands them out one per
env step from a queue, the way lerobot's ``select_action`` does, so chunked and single-step
policies look the same to a caller. Save/load goes through huggingface_hub's
``tools.models.hub.HubMixin`` (huggingface_hub's mixin: ``config.json`` + ``model.safetensors``; ``push_to_hub`` where a
network exists); ``config.json`` also names the policy's family (``"policy_type"``), so
``vla.registry.load_policy`` opens any checkpoint folder. :meth:`Policy.from_pretrained` turns the
many ways a checkpoint can be broken into one :class:`CheckpointError` that names the file.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from tools.models.hub import HubMixin

CONFIG_FILE = "config.json"
ACTION_SPACES: tuple[str, ...] = ("discrete", "continuous")
WEIGHTS_FILE = "model.safetensors"
#: The config.json key naming the policy family (``Policy.name``, a ``vla.registry`` name).
POLICY_TYPE_KEY = "policy_type"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, truncated or made for another policy/config."""


class SpaceMismatchError(ValueError):
    """An observation or action space differs from the one the policy was trained on."""


@dataclass
class PolicyConfig:
    """What every policy must know about its world.

    Args:
        image_shape: (H, W, C) of ``obs["image"]`` (uint8).
        state_dim: length of ``obs["state"]``.
        num_actions: size of the discrete action space (``action_space="discrete"``).
        chunk_size: actions predicted per inference call (``act`` queues them).
        seed: seeds the sampling noise so the same checkpoint gives the same actions.
        action_space: ``"discrete"`` (an index below ``num_actions``, e.g. Crafter) or ``"continuous"``
            (a vector of ``action_dim`` floats in [``action_low``, ``action_high``], e.g. Meta-World).
        action_dim: length of a continuous action vector.
        action_low: lower bound of every continuous action dimension.
        action_high: upper bound of every continuous action dimension.
        instructions: the instructions (skill names) the policy was trained on, set by ``vla.train`` from the
            data; a runner refuses others by name. Empty: not recorded (no check).
    """

    image_shape: tuple[int, int, int] = (64, 64, 3)
    state_dim: int = 42
    num_actions: int = 17
    chunk_size: int = 1
    seed: int = 0
    action_space: str = "discrete"
    action_dim: int = 1
    action_low: float = -1.0
    action_high: float = 1.0
    instructions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # JSON gives lists
        self.instructions = tuple(str(v) for v in self.instructions)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {self.image_shape=}")
        for name in ("state_dim", "num_actions", "chunk_size", "action_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)=}")
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space must be one of {ACTION_SPACES}, got {self.action_space=}")
        if not self.action_low < self.action_high:
            raise ValueError(f"need action_low < action_high, got {self.action_low=} {self.action_high=}")

    @property
    def continuous(self) -> bool:
        return self.action_space == "continuous"

    def check_observation(self, obs: dict[str, np.ndarray]) -> None:
        """Raise :class:`SpaceMismatchError` naming both shapes when ``obs`` is not what the policy expects."""
        image, state = np.shape(obs["image"]), np.shape(obs["state"])
        if image[-3:] != self.image_shape:
            raise SpaceMismatchError(f"observation image shape {image[-3:]} != checkpoint "
                                     f"image_shape {self.image_shape}")
        if state[-1:] != (self.state_dim,):
            raise SpaceMismatchError(f"observation state shape {state[-1:]} != checkpoint "
                                     f"state_dim ({self.state_dim},)")

    def check_spaces(self, observation_space: gymnasium.spaces.Dict, action_space: gymnasium.Space) -> None:
        """Raise :class:`SpaceMismatchError` naming both when an env does not match the checkpoint."""
        self.check_observation({k: np.zeros(space.shape) for k, space in observation_space.spaces.items()})
        if self.continuous:
            if not isinstance(action_space, gymnasium.spaces.Box) or action_space.shape != (self.action_dim,):
                raise SpaceMismatchError(f"env action space {action_space} != checkpoint continuous "
                                         f"action_dim={self.action_dim} (Box)")
        elif getattr(action_space, "n", None) != self.num_actions:
            raise SpaceMismatchError(f"env action space {action_space} != checkpoint num_actions={self.num_actions} "
                                     "(Discrete)")


class Policy(nn.Module, HubMixin):
    """Base class: set ``config_class`` and ``name``; implement ``forward`` and ``predict_action_chunk``."""

    config_class: ClassVar[type[PolicyConfig]]
    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attribute in ("config_class", "name"):
            if not hasattr(cls, attribute):
                raise TypeError(f"policy class {cls.__name__} must set {attribute!r}")

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        if isinstance(config, dict):  # the hub mixin passes config.json as a dict unless __init__ names the type
            known = {f.name for f in fields(self.config_class)}
            config = self.config_class(**{k: v for k, v in config.items() if k in known})
        self.config = config
        self._queue: deque[int | np.ndarray] = deque()
        self._generator = torch.Generator().manual_seed(config.seed)

    def reset(self) -> None:
        """Forget queued actions and reseed the sampling noise (call at the start of each episode/skill)."""
        self._queue.clear()
        self._generator.manual_seed(self.config.seed)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss and logged values for a batch of dataset rows."""
        raise NotImplementedError("forward(batch) -> (loss, info)")

    def predict_action_chunk(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        """Batched inference: obs arrays with a leading batch dim -> action indices ``(B, chunk_size)``, or
        action vectors ``(B, chunk_size, action_dim)`` for a continuous action space."""
        raise NotImplementedError("predict_action_chunk(obs, instructions) -> (B, chunk_size[, action_dim])")

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], instruction: str) -> int | np.ndarray:
        """One env action (an index, or a float32 vector when continuous) for one observation; refills the
        queue with a new chunk when it runs dry."""
        if not self._queue:
            self.config.check_observation(obs)
            batch = {key: np.asarray(value)[None] for key, value in obs.items()}
            chunk = self.predict_action_chunk(batch, [instruction])[0]
            self._queue.extend(a.numpy().astype(np.float32) if self.config.continuous else int(a) for a in chunk)
        return self._queue.popleft()

    def load_weights(self, path: str | Path) -> None:
        """Load ``save_pretrained``'s weights file in place, every tensor present (a trainer's resume)."""
        self.load_state_dict(load_file(path))

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> str | None:  # type: ignore[override]
        """The hub mixin's folder, with the family's name in ``config.json`` (``POLICY_TYPE_KEY``)."""
        kwargs.setdefault("config", {**asdict(self.config), POLICY_TYPE_KEY: self.name})
        return super().save_pretrained(save_directory, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any):  # type: ignore[override]
        """Load a local folder or hub id; a broken checkpoint raises :class:`CheckpointError` naming the file."""
        path = Path(pretrained_model_name_or_path)
        if path.is_dir():
            for name in (CONFIG_FILE, WEIGHTS_FILE):
                if not (path / name).is_file():
                    raise CheckpointError(f"{path / name}: missing; a {cls.name} checkpoint needs {CONFIG_FILE} "
                                          f"and {WEIGHTS_FILE}")
            try:
                saved = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CheckpointError(f"{path / CONFIG_FILE}: corrupt or truncated JSON ({exc})") from exc
            kind = saved.get(POLICY_TYPE_KEY, cls.name) if isinstance(saved, dict) else cls.name
            if kind != cls.name:
                raise CheckpointError(f"{path / CONFIG_FILE}: a {kind!r} policy checkpoint, not {cls.name!r}; "
                                      f"load it with vla.registry.load_policy or --skills {path}")
        try:
            policy = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except CheckpointError:  # already names the problem (e.g. a checkpoint for another base model)
            raise
        except SafetensorError as exc:
            raise CheckpointError(f"{path / WEIGHTS_FILE}: corrupt or truncated safetensors ({exc})") from exc
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path / CONFIG_FILE}: not a valid {cls.config_class.__name__} ({exc})") from exc
        except RuntimeError as exc:  # shapes in the weights differ from what the config builds
            raise CheckpointError(f"{path / WEIGHTS_FILE}: weights do not match {path / CONFIG_FILE} ({exc})") from exc
        policy.eval()
        return policy
