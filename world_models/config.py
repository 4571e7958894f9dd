"""Configuration of the RSSM world model: one dataclass, three size presets, checked on creation.

The sizes follow DreamerV3's scaling table (Hafner et al., 2023, arXiv:2301.04104, Table B.1)
shrunk for a 2-core CPU: ``tiny`` trains in minutes and imagines tens of thousands of steps
per second; ``small`` and ``base`` are the same model with wider layers for real hardware.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch

ActionKind = Literal["discrete", "continuous"]


@dataclass(frozen=True)
class RSSMConfig:
    """Shapes, sizes and loss weights of :class:`~world_models.rssm.RSSMWorldModel`.

    Args:
        env: name of the world the model was trained on; checkpoints refuse other worlds.
        image_size: side of the square RGB observation (pixels).
        state_dim: length of the vector observation (Crafter: inventory, achievements, daylight, ...).
        action_dim: number of discrete actions, or the size of a continuous action vector.
        action_kind: "discrete" (one-hot actions) or "continuous" (vectors in [-1, 1]).
        skills: names of the expert skills the action prior is conditioned on (empty: no action prior).
        deter: size of the GRU's deterministic state h.
        stoch: number of categorical latent variables z.
        classes: classes per categorical latent.
        hidden: width of the MLPs inside the dynamics and heads.
        blocks: block-diagonal groups of the GRU (DreamerV3 ``blocks``); must divide ``deter``.
        depth: channels of the first encoder convolution (doubled at each of 4 stride-2 stages).
        unimix: share of the uniform distribution mixed into every categorical (avoids log 0).
        free_nats: KL below this (summed over latents) is not penalised ("free bits").
        dyn_scale: weight of KL(sg(posterior) || prior), which trains the prior.
        rep_scale: weight of KL(posterior || sg(prior)), which regularises the posterior.
        image_scale, state_scale, reward_scale, cont_scale, policy_scale: loss weights of the heads.
        seq_len: training sequence length; imagining past it is extrapolation (warned about).
        device: "cpu", "cuda", "auto" (cuda when available).
        dtype: parameter dtype, "float32" or "bfloat16".
    """

    env: str = "crafter"
    image_size: int = 64
    state_dim: int = 42
    action_dim: int = 17
    action_kind: ActionKind = "discrete"
    skills: tuple[str, ...] = ()
    deter: int = 128
    stoch: int = 16
    classes: int = 16
    hidden: int = 96
    blocks: int = 4
    depth: int = 8
    unimix: float = 0.01
    free_nats: float = 1.0
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    image_scale: float = 1.0
    state_scale: float = 1.0
    reward_scale: float = 1.0
    cont_scale: float = 1.0
    policy_scale: float = 0.1
    seq_len: int = 32
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"RSSMConfig.image_size must be a multiple of 16 and >= 16, got {self.image_size=}")
        if self.action_kind not in ("discrete", "continuous"):
            raise ValueError(f"RSSMConfig.action_kind must be 'discrete' or 'continuous', got {self.action_kind=}")
        for name in ("state_dim", "action_dim", "deter", "stoch", "classes", "hidden", "blocks", "depth", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"RSSMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.deter % self.blocks:
            raise ValueError(f"RSSMConfig.deter must be divisible by blocks, got {self.deter=} {self.blocks=}")
        if not 0 <= self.unimix < 1:
            raise ValueError(f"RSSMConfig.unimix must be in [0, 1), got {self.unimix=}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"RSSMConfig.dtype must be 'float32' or 'bfloat16', got {self.dtype=}")
        if self.device not in ("cpu", "auto") and not self.device.startswith("cuda"):
            raise ValueError(f"RSSMConfig.device must be 'cpu', 'cuda[:n]' or 'auto', got {self.device=}")
        object.__setattr__(self, "skills", tuple(self.skills))  # JSON gives lists back

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def latent_dim(self) -> int:
        """Size of the model state fed to the heads: deterministic h plus flattened one-hot z."""
        return self.deter + self.stoch * self.classes

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skills"] = list(self.skills)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RSSMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RSSMConfig field(s) {unknown}")
        return cls(**data)

    @classmethod
    def from_json_file(cls, file: str | Path) -> RSSMConfig:
        """The config in ``file`` (plain, or nested under ``"config"``); any fault is a ValueError naming the file."""
        try:
            data = json.loads(Path(file).read_text())
            return cls.from_dict(data.get("config", data))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"world-model config {file} is not a valid RSSMConfig: {exc}") from None

    def mismatch(self, other: RSSMConfig) -> list[str]:
        """The observation/action fields where ``other`` describes a different world than ``self``."""
        keys = ("env", "image_size", "state_dim", "action_dim", "action_kind")
        return [f"{k}={getattr(self, k)!r} vs {getattr(other, k)!r}" for k in keys
                if getattr(self, k) != getattr(other, k)]


PRESETS: dict[str, RSSMConfig] = {
    "tiny": RSSMConfig(),
    "small": RSSMConfig(deter=512, stoch=32, classes=16, hidden=256, blocks=8, depth=32, seq_len=48),
    "base": RSSMConfig(deter=2048, stoch=32, classes=32, hidden=512, blocks=8, depth=64, seq_len=64),
}


def preset(name: str, **overrides: Any) -> RSSMConfig:
    """The named size preset with ``overrides`` applied (validated again)."""
    if name not in PRESETS:
        raise ValueError(f"unknown world-model preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
