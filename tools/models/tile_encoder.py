"""The Crafter vision encoder: a small CNN over the 64x64 frame, one token per 7-pixel tile.

Shared by the VLM (``agents.vision``), the pixel agent's perception (``agents.perception``) and the VLA
policies that see through it (``vla.hybrid`` with ``vision="tiles"``), so it lives in ``tools``.

Crafter draws the world on a fixed grid (9x7 view tiles, then two rows of status-bar slots), so a
tile-aligned CNN gives 81 tokens that each see one tile and its neighbours. It is trained first with
supervised heads on the privileged labels of the frame (``tools.vlm_data``): the class of every view
cell, the count in every status-bar slot, facing, daylight, sleeping. Those heads are the encoder's
*structured reading* (:meth:`VisionEncoder.read`), which the pixel agent's belief is built from; the
tokens (with the heads' probabilities) feed the projector into SmolLM2 (``agents.vision.vlm``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tools.envs.crafter import ITEM_NAMES
from tools.models.hub import HubMixin
from tools.vlm_data import (
    FACINGS,
    MAX_COUNT,
    NUM_CLASSES,
    TILE,
    VIEW_COLS,
    VIEW_ROWS,
    FrameReading,
    FrameSet,
    check_frame,
)

GRID = 9  # 9x9 tiles: 7 view rows + 2 status-bar rows
SLOTS = len(ITEM_NAMES)


@dataclass
class EncoderConfig:
    """Sizes of the encoder. Args:
        width: channels of the per-tile features (the token size).
        stem: channels of the full-resolution convolution before tiling.
        context: 3x3 convolutions over the tile grid (each widens what a token sees by one tile).
    """

    width: int = 64
    stem: int = 24
    context: int = 2


class VisionEncoder(nn.Module, HubMixin, library_name="embodia", tags=["vision-encoder", "crafter"]):
    """Frames (B, 64, 64, 3) uint8 -> 81 tokens of ``width``, plus the supervised reading heads."""

    def __init__(self, width: int = 64, stem: int = 24, context: int = 2) -> None:
        super().__init__()
        self.config = EncoderConfig(width, stem, context)
        self.stem = nn.Conv2d(3, stem, 3, padding=1)
        self.tile = nn.Conv2d(stem, width, TILE, stride=TILE)
        self.context = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(context))
        self.position = nn.Parameter(torch.zeros(1, width, GRID, GRID))
        self.cell_head = nn.Linear(width, NUM_CLASSES)
        self.count_head = nn.Linear(width, MAX_COUNT + 1)
        self.facing_head = nn.Linear(width, len(FACINGS))
        self.light_head = nn.Linear(width, 2)  # daylight (regression), sleeping (logit)

    @property
    def width(self) -> int:
        return self.config.width

    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 64, 64, 3) uint8 -> (B, 81, width), row-major over the 9x9 tile grid."""
        x = frames[:, : GRID * TILE, : GRID * TILE].permute(0, 3, 1, 2).float() / 255.0
        x = F.gelu(self.tile(F.gelu(self.stem(x)))) + self.position
        for conv in self.context:
            x = x + F.gelu(conv(x))
        return x.flatten(2).transpose(1, 2)

    def heads(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every reading head from the tokens."""
        view = tokens[:, : VIEW_ROWS * GRID]
        slots = tokens[:, VIEW_ROWS * GRID: VIEW_ROWS * GRID + SLOTS]
        centre = tokens[:, (VIEW_ROWS // 2) * GRID + VIEW_COLS // 2]
        light = self.light_head(view.mean(1))
        return {"cells": self.cell_head(view), "counts": self.count_head(slots), "facing": self.facing_head(centre),
                "daylight": light[:, 0], "sleeping": light[:, 1]}

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.tokens(frames)
        return {"tokens": tokens, **self.heads(tokens)}

    def loss(self, frames: torch.Tensor, labels: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = self(frames)
        parts = {
            "cells": F.cross_entropy(out["cells"].flatten(0, 1), labels["cells"].flatten()),
            "counts": F.cross_entropy(out["counts"].flatten(0, 1), labels["inventory"].flatten()),
            "facing": F.cross_entropy(out["facing"], labels["facing"]),
            "daylight": F.mse_loss(torch.sigmoid(out["daylight"]), labels["daylight"]) * 10,
            "sleeping": F.binary_cross_entropy_with_logits(out["sleeping"], labels["sleeping"].float()),
        }
        return sum(parts.values()), {k: float(v) for k, v in parts.items()}

    @torch.inference_mode()
    def read(self, frame: np.ndarray) -> FrameReading:
        """The structured reading of one frame (argmax of every head); a wrong-shaped frame raises clearly."""
        out = self(torch.from_numpy(np.ascontiguousarray(check_frame(frame)))[None])
        return readings(out)[0]


def readings(out: dict[str, torch.Tensor]) -> list[FrameReading]:
    """FrameReadings from a batch of head outputs."""
    cells = out["cells"].argmax(-1).reshape(-1, VIEW_ROWS, GRID)[:, :, :VIEW_COLS].cpu().numpy()
    counts = out["counts"].argmax(-1).cpu().numpy()
    facing = out["facing"].argmax(-1).cpu().numpy()
    daylight = torch.sigmoid(out["daylight"]).cpu().numpy()
    sleeping = (out["sleeping"] > 0).cpu().numpy()
    confidence = out["cells"].softmax(-1).amax(-1).mean(-1).cpu().numpy()
    return [FrameReading({n: int(c) for n, c in zip(ITEM_NAMES, counts[i], strict=True)}, cells[i],
                         float(daylight[i]), FACINGS[int(facing[i])], bool(sleeping[i]),
                         {"cell_confidence": round(float(confidence[i]), 3)}) for i in range(len(cells))]


def batch_labels(frames: FrameSet, index: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Frames and labels of ``index`` as tensors; the 7x9 view is laid out on the 9-wide token grid."""
    cells = np.zeros((len(index), VIEW_ROWS, GRID), np.int64)
    cells[:, :, :VIEW_COLS] = frames.cells[index]
    return torch.from_numpy(frames.frames[index]), {
        "cells": torch.from_numpy(cells.reshape(len(index), -1)),
        "inventory": torch.from_numpy(frames.inventory[index]),
        "facing": torch.from_numpy(frames.facing[index]),
        "daylight": torch.from_numpy(frames.daylight[index]),
        "sleeping": torch.from_numpy(frames.sleeping[index]),
    }


def config_dict(encoder: VisionEncoder) -> dict:
    return asdict(encoder.config)
