"""Building blocks of the RSSM, after DreamerV3's ``nets.py``/``rssm.py`` (arXiv:2301.04104).

symlog squashes targets of any scale (rewards, inventory counts) so one loss weight fits all;
LayerNorm + SiLU after every layer and block-diagonal GRU weights are what let DreamerV3 train
with fixed hyperparameters across domains. The CNNs halve the image four times (64 -> 4).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


class NormLinear(nn.Sequential):
    """Linear -> LayerNorm -> SiLU, the unit every DreamerV3 MLP is made of."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__(nn.Linear(inputs, outputs, bias=False), nn.LayerNorm(outputs), nn.SiLU())


class BlockLinear(nn.Module):
    """A linear layer with block-diagonal weights: ``blocks`` independent maps of equal size.

    The GRU state is split into groups that each see their own slice plus the shared input,
    so the recurrent cost grows with deter²/blocks instead of deter².
    """

    def __init__(self, inputs: int, outputs: int, blocks: int) -> None:
        super().__init__()
        if inputs % blocks or outputs % blocks:
            raise ValueError(f"BlockLinear: {inputs=} and {outputs=} must be divisible by {blocks=}")
        self.blocks = blocks
        self.weight = nn.Parameter(torch.empty(blocks, inputs // blocks, outputs // blocks))
        self.bias = nn.Parameter(torch.zeros(outputs))
        nn.init.uniform_(self.weight, -1 / math.sqrt(inputs // blocks), 1 / math.sqrt(inputs // blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(*x.shape[:-1], self.blocks, -1)  # (B, G, I/G)
        out = torch.einsum("...gi,gio->...go", grouped, self.weight)  # (B, G, O/G)
        return out.reshape(*x.shape[:-1], -1) + self.bias


class MLP(nn.Module):
    """``layers`` NormLinear units and a linear output layer."""

    def __init__(self, inputs: int, outputs: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        units = [NormLinear(inputs if i == 0 else hidden, hidden) for i in range(layers)]
        self.body = nn.Sequential(*units)
        self.out = nn.Linear(hidden if layers else inputs, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def _conv_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels)  # one group = LayerNorm over (C, H, W)


class Encoder(nn.Module):
    """Image (uint8, HxWx3) and state vector -> one embedding per frame."""

    def __init__(self, image_size: int, state_dim: int, depth: int, hidden: int) -> None:
        super().__init__()
        chans = [3, depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), _conv_norm(cout), nn.SiLU()]
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        self.state = NormLinear(state_dim, hidden)
        self.outputs = 8 * depth * (image_size // 16) ** 2 + hidden

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        lead = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:]).permute(0, 3, 1, 2)  # (N, 3, H, W)
        x = x.to(self.state[0].weight.dtype) / 255.0 - 0.5
        pixels = self.cnn(x).reshape(*lead, -1)  # (B, T, 8d * 4 * 4)
        return torch.cat([pixels, self.state(symlog(state.to(x.dtype)))], -1)  # (B, T, E)


class Decoder(nn.Module):
    """Model state -> mean image in [0, 1] (H x W x 3, channels last like the observations)."""

    def __init__(self, latent_dim: int, image_size: int, depth: int) -> None:
        super().__init__()
        self.side = image_size // 16
        self.top = 8 * depth
        self.inp = nn.Linear(latent_dim, self.top * self.side**2)
        chans = [8 * depth, 4 * depth, 2 * depth, depth]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), _conv_norm(cout), nn.SiLU()]
        layers.append(nn.ConvTranspose2d(depth, 3, 4, 2, 1))
        self.cnn = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        lead = latent.shape[:-1]
        x = self.inp(latent.reshape(-1, latent.shape[-1])).reshape(-1, self.top, self.side, self.side)
        x = self.cnn(x) + 0.5  # (N, 3, H, W)
        return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[2:], 3)  # (B, T, H, W, 3)
