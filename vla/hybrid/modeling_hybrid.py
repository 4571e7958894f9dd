"""HybridVLA: collaborative diffusion and autoregression in one transformer.

After Liu et al., "HybridVLA: Collaborative Diffusion and Autoregression in a Unified
Vision-Language-Action Model" (2025, https://arxiv.org/abs/2503.10631). One sequence holds

    [instruction bytes (L), image patches (P), state (1) | timestep (1), noisy actions (H) | BOS, a_0 .. a_{H-2} (H)]
     ----------------- prefix (Sp) -------------------   ----- diffusion segment -----    ---- AR segment ----

and one transformer reads it. The AR head predicts the discrete action tokens teacher-forced
(causal within its segment); the diffusion head denoises the noisy action tokens (bidirectional
within its segment), conditioned on the timestep token; the loss is the weighted sum of both.
Both segments attend to the prefix but not to each other: in training the noisy tokens carry the
answer (AR would learn to copy it), and at inference the prefix is encoded once, cached, and the
DDIM steps and the AR decode each run only their own few tokens against that cache — which is
what makes 4 denoising steps per action affordable on a CPU.

Discrete actions (Crafter's 17): the AR tokens are the action indices themselves; the diffusion
head denoises a one-hot relaxation scaled to [-1, 1] (``2 * one_hot - 1``, one vector per chunk
step), predicting the clean sample (``prediction_type="sample"``) so that the last DDIM step
returns it directly; ``softmax(x0 / temperature)`` turns it into action probabilities.

Collaborative ensemble (the paper's rule): when the mean AR confidence (probability of its
chosen tokens) is at least ``ensemble_threshold``, the AR and diffusion predictions are averaged;
otherwise the diffusion prediction is used alone.
"""

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from vla.base import Policy
from vla.hybrid.configuration_hybrid import HybridConfig
from vla.hybrid.processor_hybrid import VOCAB_SIZE, preprocess

KV = tuple[torch.Tensor, torch.Tensor]


class Block(nn.Module):
    """Pre-norm transformer block whose attention can prepend cached prefix keys/values."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """``x`` (B, T, D); ``mask`` (T, Tpast + T) bool, True = may attend; returns x and this pass's (k, v)."""
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, h, T, hs)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, h, T, hs)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(B, T, D)))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


def collaborative_ensemble(
    ar_probs: torch.Tensor, diffusion_probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average AR and diffusion probabilities where AR is confident, else trust diffusion alone.

    Args:
        ar_probs: (B, H, A) AR token probabilities.
        diffusion_probs: (B, H, A) probabilities from the denoised relaxation.
        threshold: mean max-probability of the AR chunk needed to fuse.

    Returns:
        (B, H, A) probabilities and the (B,) bool mask of rows where AR was fused in.
    """
    confidence = ar_probs.max(dim=-1).values.mean(dim=-1)  # (B,)
    fused = confidence >= threshold
    probs = torch.where(fused[:, None, None], (ar_probs + diffusion_probs) / 2, diffusion_probs)
    return probs, fused


def segment_mask(config: HybridConfig) -> torch.Tensor:
    """(S, S) bool attention mask over [prefix | diffusion | AR]; see the module docstring."""
    sp, h = config.prefix_len, config.chunk_size
    d_end = sp + 1 + h
    size = d_end + h
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, :sp] = True  # everyone reads the prefix; the prefix reads only itself
    mask[sp:d_end, sp:d_end] = True
    mask[d_end:, d_end:] = torch.ones(h, h).tril().bool()
    return mask


class HybridVLAPolicy(Policy):
    """Tiny from-scratch HybridVLA for discrete actions (see the module docstring)."""

    config_class = HybridConfig
    name = "hybrid"

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        self.config: HybridConfig = config
        d, a, channels = config.d_model, config.num_actions, config.image_shape[2]
        self.instruction_embed = nn.Embedding(VOCAB_SIZE, d)
        stride = config.patch_size // 4
        self.image_stem = nn.Sequential(nn.Conv2d(channels, 32, 4, stride=4), nn.GELU(),
                                        nn.Conv2d(32, d, stride, stride=stride))
        self.state_embed = nn.Linear(config.state_dim, d)
        self.timestep_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.noisy_action_embed = nn.Linear(a, d)
        self.ar_embed = nn.Embedding(a + 1, d)  # index a is BOS
        mask = segment_mask(config)
        self.position = nn.Parameter(torch.randn(1, mask.shape[0], d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, config.n_heads, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.ar_head = nn.Linear(d, a)
        self.diffusion_head = nn.Linear(d, a)
        self.register_buffer("mask", mask, persistent=False)
        schedule = {"num_train_timesteps": config.num_train_timesteps, "beta_schedule": config.beta_schedule,
                    "prediction_type": "sample", "clip_sample": True}
        self.train_scheduler = DDPMScheduler(**schedule)
        self.infer_scheduler = DDIMScheduler(**schedule)

    # --- embeddings -------------------------------------------------------------------------
    def _embed_prefix(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, Sp, D) instruction + image + state tokens, positions added."""
        image = batch["image"].permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, C, H, W) in [-1, 1]
        patches = self.image_stem(image).flatten(2).transpose(1, 2)  # (B, P, D)
        state = torch.sign(batch["state"]) * torch.log1p(batch["state"].abs())  # symlog: counts 0-9 and flags
        tokens = torch.cat([self.instruction_embed(batch["instruction"]), patches,
                            self.state_embed(state)[:, None]], 1)  # (B, Sp, D)
        return tokens + self.position[:, : tokens.shape[1]]

    def _diffusion_tokens(self, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """(B, 1 + H, D) timestep token + noisy action tokens; ``noisy`` (B, H, A), ``timesteps`` (B,)."""
        t = self.timestep_mlp(get_timestep_embedding(timesteps, self.config.d_model))  # (B, D)
        return torch.cat([t[:, None], self.noisy_action_embed(noisy)], 1)

    # --- training ---------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Joint loss on a batch: ``image`` (B, H, W, C) uint8, ``state`` (B, S), ``instruction`` (B, L),
        ``action`` (B, chunk) int64."""
        cfg = self.config
        actions = batch["action"]  # (B, H)
        B, H = actions.shape
        x0 = 2.0 * F.one_hot(actions, cfg.num_actions).float() - 1.0  # (B, H, A)
        noise = torch.randn_like(x0)
        timesteps = torch.randint(0, cfg.num_train_timesteps, (B,), device=x0.device)
        noisy = self.train_scheduler.add_noise(x0, noise, timesteps)
        bos = torch.full((B, 1), cfg.num_actions, dtype=torch.long, device=actions.device)
        ar_in = self.ar_embed(torch.cat([bos, actions[:, :-1]], 1))  # (B, H, D)
        suffix = torch.cat([self._diffusion_tokens(noisy, timesteps), ar_in], 1)  # (B, 1 + 2H, D)
        x = torch.cat([self._embed_prefix(batch), suffix + self.position[:, cfg.prefix_len:]], 1)  # (B, S, D)
        for block in self.blocks:
            x, _ = block(x, self.mask)
        x = self.norm(x)
        sp = cfg.prefix_len
        x0_hat = self.diffusion_head(x[:, sp + 1 : sp + 1 + H])  # (B, H, A)
        logits = self.ar_head(x[:, sp + 1 + H :])  # (B, H, A)
        loss_ar = F.cross_entropy(logits.reshape(-1, cfg.num_actions), actions.reshape(-1))
        loss_diffusion = F.mse_loss(x0_hat, x0)
        loss = cfg.ar_loss_weight * loss_ar + cfg.diffusion_loss_weight * loss_diffusion
        accuracy = (logits.argmax(-1) == actions).float().mean()
        return loss, {"loss": loss.item(), "loss_ar": loss_ar.item(), "loss_diffusion": loss_diffusion.item(),
                      "ar_accuracy": accuracy.item()}

    # --- inference --------------------------------------------------------------------------
    def _encode_prefix(self, batch: dict[str, torch.Tensor]) -> list[KV]:
        """Run the prefix once; return each block's (k, v) for the segments to attend to."""
        x, cache = self._embed_prefix(batch), []
        for block in self.blocks:
            x, kv = block(x, None)  # the prefix attends to all of itself
            cache.append(kv)
        return cache

    def _run_segment(self, tokens: torch.Tensor, start: int, cache: list[KV]) -> torch.Tensor:
        """Tokens (B, T, D) at sequence positions ``start..start+T`` against the cached prefix -> (B, T, D)."""
        sp, T = self.config.prefix_len, tokens.shape[1]
        rows = self.mask[start : start + T]
        mask = torch.cat([rows[:, :sp], rows[:, start : start + T]], 1)  # (T, Sp + T)
        x = tokens + self.position[:, start : start + T]
        for block, kv in zip(self.blocks, cache, strict=True):
            x, _ = block(x, mask, past=kv)
        return self.norm(x)

    def _decode_ar(self, cache: list[KV], batch_size: int) -> torch.Tensor:
        """Greedy AR decode of the chunk -> (B, H, A) probabilities of each step."""
        cfg = self.config
        start = cfg.prefix_len + 1 + cfg.chunk_size
        tokens = torch.full((batch_size, 1), cfg.num_actions, dtype=torch.long, device=self.position.device)  # BOS
        probs = []
        for _ in range(cfg.chunk_size):
            out = self._run_segment(self.ar_embed(tokens), start, cache)
            p = self.ar_head(out[:, -1]).softmax(-1)  # (B, A)
            probs.append(p)
            tokens = torch.cat([tokens, p.argmax(-1, keepdim=True)], 1)
        return torch.stack(probs, 1)

    def _denoise(self, cache: list[KV], batch_size: int) -> torch.Tensor:
        """DDIM from noise to the one-hot relaxation -> (B, H, A) probabilities."""
        cfg = self.config
        self.infer_scheduler.set_timesteps(cfg.num_inference_steps)
        x = torch.randn((batch_size, cfg.chunk_size, cfg.num_actions), generator=self._generator)
        x = x.to(self.position.device)
        for t in self.infer_scheduler.timesteps:
            out = self._run_segment(self._diffusion_tokens(x, t.expand(batch_size)), cfg.prefix_len, cache)
            x0_hat = self.diffusion_head(out[:, 1:])  # (B, H, A)
            x = self.infer_scheduler.step(x0_hat, t, x).prev_sample
        return (x / cfg.diffusion_temperature).softmax(-1)

    def _prepare(self, obs: dict[str, np.ndarray], instructions: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.position.device) for k, v in preprocess(self.config, obs, instructions).items()}

    @torch.no_grad()
    def predict_probs(self, obs: dict[str, np.ndarray], instructions: list[str]) -> dict[str, torch.Tensor]:
        """(B, H, A) action probabilities from each head and from the ensemble, plus the (B,) ``fused`` mask."""
        cache = self._encode_prefix(self._prepare(obs, instructions))
        ar = self._decode_ar(cache, len(instructions))
        diffusion = self._denoise(cache, len(instructions))
        ensemble, fused = collaborative_ensemble(ar, diffusion, self.config.ensemble_threshold)
        return {"ar": ar, "diffusion": diffusion, "ensemble": ensemble, "fused": fused}

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        """(B, H) action indices from the head(s) ``config.mode`` selects."""
        mode = self.config.mode
        if mode == "ar":  # skip the denoising the answer would not use
            return self._decode_ar(self._encode_prefix(self._prepare(obs, instructions)), len(instructions)).argmax(-1)
        return self.predict_probs(obs, instructions)[mode].argmax(-1)
