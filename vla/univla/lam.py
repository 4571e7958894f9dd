"""The latent action model: a VQ-VAE on frame pairs (o_t, o_t+k), after UniVLA's ``genie/modules/lam.py``.

An encoder reads both frames' patches and K learnable action-query tokens; the queries' outputs are
quantised by a small codebook, and a decoder must predict o_t+k from o_t's patches and those codes alone,
so the codes have to carry what changed. Stage 1 also feeds the instruction to the encoder and decoder
(UniVLA: T5 embeddings; here learnt byte embeddings), so its codes need hold only what the instruction
does not explain: task-irrelevant dynamics. Stage 2 drops the language, freezes codebook 1 and learns a
second codebook from a second set of queries: the task-centric latent actions the policy predicts.

Features are pixels (UniVLA: frozen DINOv2 patch features): a Crafter frame is 64x64 (a tile ~7 px), there
is no frozen image encoder here trained on Crafter, and a DINOv2 pass per frame would cost more than the
whole model on this CPU; 16x16 pixel patches (``lam_patch_size``) keep a frame at 16 tokens. The decoder
predicts o_t+k as o_t plus a learnt change (the same target, an easier start: most of a frame stays).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla.hybrid.processor_hybrid import PAD_TOKEN, VOCAB_SIZE
from vla.univla.configuration_univla import UniVLAConfig


def patchify(image: torch.Tensor, patch: int) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, N, patch*patch*C) in [0, 1], row-major patches."""
    b, h, w, c = image.shape
    x = image.float().div(255.0).reshape(b, h // patch, patch, w // patch, patch, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def transformer(width: int, layers: int, heads: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class VectorQuantizer(nn.Module):
    """Nearest-code quantiser with a straight-through gradient and dead-code restart (UniVLA's ``VectorQuantizer``).

    Every ``restart_every`` training calls, codes no row picked since the last restart are moved onto random
    encoder outputs of the current batch (UniVLA copies other codes; encoder outputs put them where the data
    is). A frozen codebook (``requires_grad_(False)``, stage 2's codebook 1) is never restarted.
    """

    def __init__(self, num_codes: int, dim: int, restart_every: int) -> None:
        super().__init__()
        self.codebook = nn.Embedding(num_codes, dim)
        self.codebook.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)
        self.register_buffer("usage", torch.zeros(num_codes), persistent=False)
        self.restart_every = restart_every
        self.calls = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, Q, D) -> (straight-through z_q, the codes z, indices (B, Q))."""
        flat = x.reshape(-1, x.shape[-1])
        learning = self.training and self.codebook.weight.requires_grad
        if learning:
            self.calls += 1
            if self.calls % self.restart_every == 0:
                self.restart_dead(flat.detach())
        indices = torch.cdist(flat, self.codebook.weight).argmin(-1)
        if learning:
            self.usage.index_add_(0, indices, torch.ones_like(indices, dtype=self.usage.dtype))
        z = self.codebook(indices).view_as(x)
        return x + (z - x).detach(), z, indices.view(x.shape[:-1])

    @torch.no_grad()
    def restart_dead(self, samples: torch.Tensor) -> int:
        """Move every unused code onto a random row of ``samples``; returns how many moved."""
        dead = (self.usage == 0).nonzero().squeeze(1)
        if len(dead):
            pick = torch.randint(len(samples), (len(dead),), device=samples.device)
            self.codebook.weight[dead] = samples[pick] + 1e-3 * torch.randn_like(samples[pick])
        self.usage.zero_()
        return len(dead)


def vq_losses(x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss, commitment loss): codes move to the encoder outputs, the outputs commit to their codes."""
    return F.mse_loss(z, x.detach()), F.mse_loss(x, z.detach())


class LatentActionModel(nn.Module):
    """Encoder with K action queries -> VQ -> decoder predicting o_t+k from o_t (both stages in one module)."""

    def __init__(self, config: UniVLAConfig) -> None:
        super().__init__()
        self.config = c = config
        d, n, pixels = c.lam_dim, c.lam_patches(), c.lam_patch_size ** 2 * c.image_shape[2]
        self.patch_in = nn.Linear(pixels, d)
        self.frame_pos = nn.Parameter(torch.randn(1, 2, n, d) * 0.02)  # (frame, patch) positions
        self.lang = nn.Embedding(VOCAB_SIZE, d)
        self.lang_pos = nn.Parameter(torch.randn(1, c.max_instruction_len, d) * 0.02)
        self.queries1 = nn.Parameter(torch.empty(1, c.num_queries, d).uniform_(-1, 1))
        self.queries2 = nn.Parameter(torch.empty(1, c.num_queries, d).uniform_(-1, 1))
        self.encoder = transformer(d, c.lam_layers, c.n_heads, c.dropout)
        self.to_code1, self.to_code2 = nn.Linear(d, c.code_dim), nn.Linear(d, c.code_dim)
        self.vq1 = VectorQuantizer(c.num_codes, c.code_dim, c.restart_every)
        self.vq2 = VectorQuantizer(c.num_codes, c.code_dim, c.restart_every)
        self.up1, self.up2 = nn.Linear(c.code_dim, d), nn.Linear(c.code_dim, d)
        self.patch_up = nn.Linear(pixels, d)
        self.dec_pos = nn.Parameter(torch.randn(1, n, d) * 0.02)
        self.decoder = transformer(d, c.lam_layers, c.n_heads, c.dropout)
        self.head = nn.Linear(d, pixels)

    def stage_modules(self, stage: str) -> list[nn.Module | nn.Parameter]:
        """What ``stage`` trains: stage 2 trains everything but codebook 1 and the language embedding."""
        unused_in_1 = {"queries2", "to_code2", "vq2", "up2"}
        frozen_in_2 = {"vq1", "lang", "lang_pos"}
        skip = unused_in_1 if stage == "lam1" else frozen_in_2
        return [value for name, value in [*self.named_children(), *self.named_parameters(recurse=False)]
                if name not in skip]

    def _language(self, instruction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lang(instruction) + self.lang_pos, instruction == PAD_TOKEN

    def encode(self, image: torch.Tensor, next_image: torch.Tensor, instruction: torch.Tensor | None,
               stage: str) -> dict[str, torch.Tensor]:
        """Quantised latents of each frame pair; ``instruction`` is read in stage 1 only."""
        c, q = self.config, self.config.num_queries
        before, after = patchify(image, c.lam_patch_size), patchify(next_image, c.lam_patch_size)
        frames = self.patch_in(torch.stack([before, after], 1)) + self.frame_pos  # (B, 2, N, d)
        frames = frames.flatten(1, 2)
        b = len(frames)
        out: dict[str, torch.Tensor] = {"before": before, "after": after}
        if stage == "lam1":
            lang, pad = self._language(instruction)
            tokens = torch.cat([self.queries1.expand(b, -1, -1), lang, frames], 1)
            none = torch.zeros(b, q + frames.shape[1], dtype=torch.bool)
            mask = torch.cat([none[:, :q], pad, none[:, q:]], 1)
            h = self.encoder(tokens, src_key_padding_mask=mask)
            out.update(lang=lang, lang_pad=pad)
            first = h[:, :q]
        else:
            h = self.encoder(torch.cat([self.queries2.expand(b, -1, -1), self.queries1.expand(b, -1, -1), frames], 1))
            first = h[:, q:2 * q]
            out["x2"] = self.to_code2(h[:, :q])
            out["zq2"], out["z2"], out["codes2"] = self.vq2(out["x2"])
        out["x1"] = self.to_code1(first)
        out["zq1"], out["z1"], out["codes1"] = self.vq1(out["x1"])
        return out

    def forward(self, batch: dict[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss = reconstruction MSE + codebook + commitment·commitment loss (each codebook of the stage)."""
        c = self.config
        enc = self.encode(batch["image"], batch["next_image"], batch["instruction"], stage)
        patches = self.patch_up(enc["before"]) + self.dec_pos
        b, n = len(patches), patches.shape[1]
        if stage == "lam1":
            tokens = torch.cat([self.up1(enc["zq1"]), enc["lang"], patches], 1)
            mask = torch.cat([torch.zeros(b, c.num_queries, dtype=torch.bool), enc["lang_pad"],
                              torch.zeros(b, n, dtype=torch.bool)], 1)
            h = self.decoder(tokens, src_key_padding_mask=mask)
        else:
            h = self.decoder(torch.cat([self.up2(enc["zq2"]), self.up1(enc["zq1"]), patches], 1))
        recon = enc["before"] + self.head(h[:, -n:])
        mse = F.mse_loss(recon, enc["after"])
        codebook, commit = vq_losses(enc["x1"], enc["z1"])
        loss = mse + codebook + c.commitment * commit
        info = {"recon_mse": mse.item(), "copy_mse": F.mse_loss(enc["before"], enc["after"]).item(),
                "codes_used_1": float(enc["codes1"].unique().numel())}
        if stage != "lam1":
            codebook2, commit2 = vq_losses(enc["x2"], enc["z2"])
            loss = loss + codebook2 + c.commitment * commit2
            info["codes_used_2"] = float(enc["codes2"].unique().numel())
        info["loss"] = loss.item()
        return loss, info

    @torch.no_grad()
    def latent_actions(self, image: torch.Tensor, next_image: torch.Tensor) -> torch.Tensor:
        """Task-centric code indices (B, K) of frame pairs: the latent policy's pseudo-labels."""
        return self.encode(image, next_image, None, "lam2")["codes2"]
