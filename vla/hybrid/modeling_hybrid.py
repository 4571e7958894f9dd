"""HybridVLA: collaborative diffusion and autoregression in one transformer.

After Liu et al., "HybridVLA: Collaborative Diffusion and Autoregression in a Unified
Vision-Language-Action Model" (2025, https://arxiv.org/abs/2503.10631). One sequence holds

    [instruction bytes (L), image patches (P), state (1) | timestep (1), noisy actions (H) | BOS, a_0 .. a_{H-2} (H)]
     ----------------- prefix (Sp) -------------------   ----- diffusion segment -----    ---- AR segment ----

and one transformer reads it. The AR head predicts the discrete action tokens teacher-forced
(causal within its segment); the diffusion head denoises the noisy action tokens (bidirectional
within its segment), conditioned on the timestep token; the loss is the weighted sum of both.
Both segments attend to the prefix but not to each other: in training the noisy tokens carry the
answer (AR would learn to copy it). At inference that independence lets them share passes: pass k
runs DDIM step k and AR token k side by side, and the first pass also encodes the prefix and caches
its keys/values, so a chunk of H actions costs max(DDIM steps, H) passes of a few tokens each —
4 passes per action for the shipped checkpoint (4 DDIM steps, H = 1), against 6 when the prefix, the
AR decode and each DDIM step ran separately.

Discrete actions (Crafter's 17): the AR tokens are the action indices themselves; the diffusion
head denoises a one-hot relaxation scaled to [-1, 1] (``2 * one_hot - 1``, one vector per chunk
step), predicting the clean sample (``prediction_type="sample"``) so that the last DDIM step
returns it directly; ``softmax(x0 / temperature)`` turns it into action probabilities.

Continuous actions (Meta-World's 4, ``action_space="continuous"``; ``vla/hybrid/continuous.py``): the AR
segment holds one token per action *dimension* (H x A tokens, each one of ``num_bins`` uniform bins, as in
RT-2), the noisy action tokens are the action vectors themselves scaled to [-1, 1], and the denoised
vector is the diffusion head's action.

The transformer is a tiny from-scratch one (``Block``, the default) or, with ``backbone="smollm2"``, the
embedded SmolLM2's decoder layers with LoRA under the same segment mask (``vla/hybrid/backbone_llm.py``),
whose prefix cache is transformers' key/value cache.

Collaborative ensemble (the paper's rule): when the mean AR confidence (probability of its
chosen tokens) is at least ``ensemble_threshold``, the AR and diffusion predictions are averaged;
otherwise the diffusion prediction is used alone (continuous: the AR bin centres and the diffusion action
are averaged).
"""

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.models.embeddings import get_timestep_embedding
from safetensors.torch import load_file, save_file
from torch import nn

from vla.base import WEIGHTS_FILE, CheckpointError, Policy
from vla.hybrid.configuration_hybrid import HybridConfig
from vla.hybrid.continuous import bin_centres, denormalize, fuse_continuous, normalize, to_bins
from vla.hybrid.processor_hybrid import VOCAB_SIZE, preprocess

if TYPE_CHECKING:  # transformers is imported only with the LLM backbone
    from transformers import DynamicCache

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


class DDIMStep(NamedTuple):
    """One deterministic DDIM step (eta 0) of an x0-predicting model; see :func:`ddim_steps`."""

    t: int
    sqrt_alpha: float
    sqrt_alpha_prev: float
    noise_scale: float  # sqrt((1 - alpha_prev) / (1 - alpha))

    def __call__(self, x0_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x_{t-1}`` from the model's unclipped ``x0_hat`` and ``x_t``, as ``DDIMScheduler.step`` computes it:
        the noise estimate uses the raw prediction, the sample term the clipped one."""
        return self.sqrt_alpha_prev * x0_hat.clamp(-1.0, 1.0) + self.noise_scale * (x - self.sqrt_alpha * x0_hat)


def ddim_steps(scheduler: DDIMScheduler, num_steps: int) -> list[DDIMStep]:
    """The scheduler's DDIM steps as plain coefficients: ``scheduler.step`` costs as much as a transformer
    pass of this tiny model, the arithmetic it does is a few tensor ops."""
    scheduler.set_timesteps(num_steps)
    stride = scheduler.config.num_train_timesteps // num_steps
    steps = []
    for t in scheduler.timesteps.tolist():
        alpha = float(scheduler.alphas_cumprod[t])
        alpha_prev = float(scheduler.alphas_cumprod[t - stride] if t - stride >= 0 else scheduler.final_alpha_cumprod)
        steps.append(DDIMStep(t, alpha ** 0.5, alpha_prev ** 0.5, ((1 - alpha_prev) / (1 - alpha)) ** 0.5))
    return steps


def segment_mask(config: HybridConfig) -> torch.Tensor:
    """(S, S) bool attention mask over [prefix | diffusion | AR]; see the module docstring."""
    sp, h, n_ar = config.prefix_len, config.chunk_size, config.ar_len
    d_end = sp + 1 + h
    size = d_end + n_ar
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, :sp] = True  # everyone reads the prefix; the prefix reads only itself
    mask[sp:d_end, sp:d_end] = True
    mask[d_end:, d_end:] = torch.ones(n_ar, n_ar).tril().bool()
    return mask


class HybridVLAPolicy(Policy):
    """HybridVLA for discrete or continuous actions (see the module docstring); the transformer is a tiny
    from-scratch one or, with ``backbone="smollm2"``, the embedded LLM with LoRA (``backbone_llm.py``)."""

    config_class = HybridConfig
    name = "hybrid"

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        self.config: HybridConfig = config
        self.llm = None
        if config.backbone == "smollm2":  # first: building it seeds torch's RNG (the LoRA initialisation)
            from vla.hybrid.backbone_llm import LLMBackbone

            self.llm = LLMBackbone(config)
        self.d_model = self.llm.hidden_size if self.llm is not None else config.d_model
        d, channels = self.d_model, config.image_shape[2]
        vocab, width = config.ar_vocab, config.noisy_dim  # both num_actions for discrete actions
        if self.llm is None:  # the LLM reads instructions through its own tokenizer and embeddings
            self.instruction_embed = nn.Embedding(VOCAB_SIZE, d)
        if config.vision == "tiles":
            from tools.models.tile_encoder import VisionEncoder

            self.vision_encoder = VisionEncoder()
            self.vision_encoder.requires_grad_(not config.freeze_vision)
            self.vision_proj = nn.Linear(self.vision_encoder.width, d)
        else:
            stride = config.patch_size // 4
            self.image_stem = nn.Sequential(nn.Conv2d(channels, 32, 4, stride=4), nn.GELU(),
                                            nn.Conv2d(32, d, stride, stride=stride))
        self.state_embed = nn.Linear(config.state_dim, d)
        self.timestep_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.noisy_action_embed = nn.Linear(width, d)
        self.ar_embed = nn.Embedding(vocab + 1, d)  # index vocab is BOS
        mask = segment_mask(config)
        self.position = nn.Parameter(torch.randn(1, mask.shape[0], d) * 0.02)
        if self.llm is None:
            self.blocks = nn.ModuleList(Block(d, config.n_heads, config.dropout) for _ in range(config.n_layers))
            self.norm = nn.LayerNorm(d)
        self.ar_head = nn.Linear(d, vocab)
        self.diffusion_head = nn.Linear(d, width)
        self.register_buffer("mask", mask, persistent=False)
        schedule = {"num_train_timesteps": config.num_train_timesteps, "beta_schedule": config.beta_schedule,
                    "prediction_type": "sample", "clip_sample": True}
        self.train_scheduler = DDPMScheduler(**schedule)
        self.infer_scheduler = DDIMScheduler(**schedule)
        self._ddim_cache: dict[int, list[DDIMStep]] = {}

    # --- embeddings -------------------------------------------------------------------------
    def _embed_prefix(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, Sp, D) instruction + image + state tokens, positions added."""
        patches = self._image_tokens(batch["image"])  # (B, P, D)
        state = torch.sign(batch["state"]) * torch.log1p(batch["state"].abs())  # symlog: counts 0-9 and flags
        embed = self.instruction_embed if self.llm is None else self.llm.embed_instruction
        tokens = torch.cat([embed(batch["instruction"]), patches,
                            self.state_embed(state)[:, None]], 1)  # (B, Sp, D)
        return tokens + self.position[:, : tokens.shape[1]]

    def _image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) uint8 -> (B, P, D): strided patches, or the tile encoder's view tokens projected."""
        if self.config.vision == "tiles":
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_vision):
                tiles = self.vision_encoder.tokens(image)[:, : self.config.num_patches]  # the 9x7 view rows
            return self.vision_proj(tiles)
        image = image.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, C, H, W) in [-1, 1]
        return self.image_stem(image).flatten(2).transpose(1, 2)

    def load_vision_encoder(self, folder: str | Path) -> None:
        """Copy a trained ``tools.models.tile_encoder.VisionEncoder`` (e.g. the VLM's ``encoder/``) into this
        policy's tile encoder; its sizes must match. The copy is saved with the policy: the checkpoint stands alone."""
        from tools.models.tile_encoder import VisionEncoder

        if self.config.vision != "tiles":
            raise ValueError(f"vision_init needs vision='tiles'; this policy reads {self.config.vision!r}")
        if not (Path(folder) / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"no tile encoder at {folder} (expected {WEIGHTS_FILE} there, e.g. the VLM's "
                                    "agents/adapters/embodia-vlm/encoder)")
        try:
            trained = VisionEncoder.from_pretrained(folder)
        except Exception as exc:  # a damaged or foreign file: name it, no traceback
            raise CheckpointError(f"cannot load the tile encoder in {folder}: {exc}") from exc
        if trained.config != self.vision_encoder.config:
            raise CheckpointError(f"tile encoder {folder} has sizes {trained.config}; the policy's is "
                                  f"{self.vision_encoder.config}")
        self.vision_encoder.load_state_dict(trained.state_dict())

    def _diffusion_tokens(self, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """(B, 1 + H, D) timestep token + noisy action tokens; ``noisy`` (B, H, A), ``timesteps`` (B,)."""
        t = self.timestep_mlp(get_timestep_embedding(timesteps, self.d_model))  # (B, D)
        return torch.cat([t[:, None], self.noisy_action_embed(noisy)], 1)

    # --- training ---------------------------------------------------------------------------
    def _targets(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AR target tokens (B, L) and the diffusion head's clean sample (B, H, W) for a batch of chunks:
        discrete (B, H) indices -> the indices and their one-hot relaxation; continuous (B, H, A) vectors ->
        one bin token per dimension and the vectors scaled to [-1, 1]."""
        cfg = self.config
        if cfg.continuous:
            return to_bins(actions, cfg, cfg.num_bins).flatten(1), normalize(actions, cfg)
        return actions, 2.0 * F.one_hot(actions, cfg.num_actions).float() - 1.0

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Joint loss on a batch: ``image`` (B, H, W, C) uint8, ``state`` (B, S), ``instruction`` (B, L),
        ``action`` (B, chunk) int64 or (B, chunk, A) float (continuous)."""
        cfg = self.config
        tokens, x0 = self._targets(batch["action"])  # (B, L), (B, H, W)
        B, H = x0.shape[:2]
        noise = torch.randn_like(x0)
        timesteps = torch.randint(0, cfg.num_train_timesteps, (B,), device=x0.device)
        noisy = self.train_scheduler.add_noise(x0, noise, timesteps)
        bos = torch.full((B, 1), cfg.ar_vocab, dtype=torch.long, device=tokens.device)
        ar_in = self.ar_embed(torch.cat([bos, tokens[:, :-1]], 1))  # (B, L, D)
        suffix = torch.cat([self._diffusion_tokens(noisy, timesteps), ar_in], 1)  # (B, 1 + H + L, D)
        x = torch.cat([self._embed_prefix(batch), suffix + self.position[:, cfg.prefix_len:]], 1)  # (B, S, D)
        x, _ = self._run(x, torch.arange(x.shape[1], device=x.device), None)
        sp = cfg.prefix_len
        x0_hat = self.diffusion_head(x[:, sp + 1 : sp + 1 + H])  # (B, H, W)
        logits = self.ar_head(x[:, sp + 1 + H :])  # (B, L, V)
        loss_ar = F.cross_entropy(logits.reshape(-1, cfg.ar_vocab), tokens.reshape(-1))
        loss_diffusion = F.mse_loss(x0_hat, x0)
        loss = cfg.ar_loss_weight * loss_ar + cfg.diffusion_loss_weight * loss_diffusion
        accuracy = (logits.argmax(-1) == tokens).float().mean()
        return loss, {"loss": loss.item(), "loss_ar": loss_ar.item(), "loss_diffusion": loss_diffusion.item(),
                      "ar_accuracy": accuracy.item()}

    # --- inference ---------------------------------------------------------------------------
    def _run(self, tokens: torch.Tensor, positions: torch.Tensor,
             cache: "list[KV] | DynamicCache | None") -> "tuple[torch.Tensor, list[KV] | DynamicCache]":
        """Tokens (B, T, D), positions added, at sequence ``positions`` (T,) -> (B, T, D) and the prefix cache.

        Without a cache the tokens must start with the whole prefix (positions ``0..Sp-1``), which is encoded
        in the same pass and cached; with one, they attend to the cached prefix. The segment mask keeps every
        token's view exactly what it is in training, so any subset of positions can share a pass.
        """
        sp = self.config.prefix_len
        if self.llm is not None:
            return self.llm.run(tokens, positions, self.mask, sp, cache)
        rows = self.mask[positions]
        if cache is None:
            mask, new_cache, x = rows[:, positions], [], tokens
            for block in self.blocks:
                x, (k, v) = block(x, mask)
                new_cache.append((k[:, :, :sp], v[:, :, :sp]))
            return self.norm(x), new_cache
        mask, x = torch.cat([rows[:, :sp], rows[:, positions]], 1), tokens
        for block, kv in zip(self.blocks, cache, strict=True):
            x, _ = block(x, mask, past=kv)
        return self.norm(x), cache

    def _ddim_steps(self) -> list[DDIMStep]:
        n = self.config.num_inference_steps  # a config knob: may change between calls
        if n not in self._ddim_cache:
            self._ddim_cache[n] = ddim_steps(self.infer_scheduler, n)
        return self._ddim_cache[n]

    def _decode(self, obs: dict[str, np.ndarray], instructions: list[str],
                heads: tuple[str, ...]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """AR token probabilities (B, L, V) and the denoised sample (B, H, W) in [-1, 1], each None unless its
        head is in ``heads``.

        Decoding is interleaved: pass k runs DDIM step k and AR token k together (neither segment sees the
        other), and the first pass also encodes the prefix, so a chunk costs max(DDIM steps, L) passes.
        """
        cfg = self.config
        batch = self._prepare(obs, instructions)
        B, H, L, sp = len(instructions), cfg.chunk_size, cfg.ar_len, cfg.prefix_len
        device = self.position.device
        diffusion_positions = torch.arange(sp, sp + 1 + H, device=device)
        ar_start = sp + 1 + H
        steps = self._ddim_steps() if "diffusion" in heads else []
        t_tokens = self.timestep_mlp(get_timestep_embedding(
            torch.tensor([step.t for step in steps], device=device), self.d_model)) if steps else None  # (n, D)
        x = torch.randn((B, H, cfg.noisy_dim), generator=self._generator).to(device) if steps else None
        ar_tokens = torch.full((B, 1), cfg.ar_vocab, dtype=torch.long, device=device)  # BOS
        ar_probs: list[torch.Tensor] = []
        passes = max(len(steps), L if "ar" in heads else 0)
        cache: list[KV] | DynamicCache | None = None
        for k in range(passes):
            parts, positions = [], []
            if cache is None:
                parts.append(self._embed_prefix(batch))
                positions.append(torch.arange(sp, device=device))
            if k < len(steps):
                diffusion_in = torch.cat([t_tokens[k].expand(B, 1, -1), self.noisy_action_embed(x)], 1)
                parts.append(diffusion_in + self.position[:, sp : sp + 1 + H])
                positions.append(diffusion_positions)
            n_ar = ar_tokens.shape[1] if len(ar_probs) < L and "ar" in heads else 0
            if n_ar:
                parts.append(self.ar_embed(ar_tokens) + self.position[:, ar_start : ar_start + n_ar])
                positions.append(torch.arange(ar_start, ar_start + n_ar, device=device))
            out, cache = self._run(torch.cat(parts, 1), torch.cat(positions), cache)
            out = out[:, -((1 + H if k < len(steps) else 0) + n_ar):]  # drop the prefix rows
            if k < len(steps):
                x = steps[k](self.diffusion_head(out[:, 1 : 1 + H]), x)  # (B, H, W)
            if n_ar:
                p = self.ar_head(out[:, -1]).softmax(-1)  # (B, V)
                ar_probs.append(p)
                ar_tokens = torch.cat([ar_tokens, p.argmax(-1, keepdim=True)], 1)
        return (torch.stack(ar_probs, 1) if ar_probs else None), x

    @torch.no_grad()
    def predict_probs(self, obs: dict[str, np.ndarray], instructions: list[str],
                      heads: tuple[str, ...] = ("ar", "diffusion")) -> dict[str, torch.Tensor]:
        """Discrete actions: (B, H, A) action probabilities from each requested head (and from the ensemble
        when both ran, with the (B,) ``fused`` mask)."""
        ar, x = self._decode(obs, instructions, heads)
        result = {}
        if ar is not None:
            result["ar"] = ar
        if x is not None:
            result["diffusion"] = (x / self.config.diffusion_temperature).softmax(-1)
        if len(result) == 2:
            result["ensemble"], result["fused"] = collaborative_ensemble(
                result["ar"], result["diffusion"], self.config.ensemble_threshold)
        return result

    @torch.no_grad()
    def predict_actions(self, obs: dict[str, np.ndarray], instructions: list[str],
                        heads: tuple[str, ...] = ("ar", "diffusion")) -> dict[str, torch.Tensor]:
        """Continuous actions: (B, H, A) action vectors from each requested head (AR: its bins' centres), and
        from the ensemble when both ran, with the (B,) ``fused`` mask."""
        cfg = self.config
        ar, x = self._decode(obs, instructions, heads)
        result = {}
        if x is not None:
            result["diffusion"] = denormalize(x, cfg)
        if ar is not None:
            probs = ar.view(len(instructions), cfg.chunk_size, cfg.action_dim, cfg.num_bins)
            if x is None:
                result["ar"] = bin_centres(probs.argmax(-1), cfg, cfg.num_bins)
            else:
                result["ar"], result["ensemble"], result["fused"] = fuse_continuous(
                    probs, result["diffusion"], cfg, cfg.num_bins, cfg.ensemble_threshold)
        return result

    def _prepare(self, obs: dict[str, np.ndarray], instructions: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.position.device) for k, v in preprocess(self.config, obs, instructions).items()}

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        """(B, H) action indices, or (B, H, A) continuous actions, from the head(s) ``config.mode`` selects (a
        lone head skips the other's passes)."""
        mode = self.config.mode
        heads = ("ar", "diffusion") if mode == "ensemble" else (mode,)
        if self.config.continuous:
            return self.predict_actions(obs, instructions, heads)[mode]
        probs = self.predict_probs(obs, instructions, heads)[mode]  # (B, H, A)
        if self.config.action_temperature == 0:
            return probs.argmax(-1)
        weights = probs.clamp_min(1e-12).log().div(self.config.action_temperature).softmax(-1)
        drawn = torch.multinomial(weights.flatten(0, 1).cpu(), 1, generator=self._generator)
        return drawn.view(probs.shape[:-1]).to(probs.device)

    # --- checkpoints --------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """The LLM backbone's frozen base weights are not written (rebuilt from the embedded model on load)."""
        if self.llm is None:
            return super()._save_pretrained(save_directory)
        from vla.hybrid.backbone_llm import saved_state

        save_file(saved_state(self.state_dict()), Path(save_directory) / WEIGHTS_FILE)

    @classmethod
    def _load_as_safetensor(cls, model: "HybridVLAPolicy", model_file: str, map_location: str, strict: bool):
        model.load_weights(model_file)
        return model.to(map_location)

    def load_weights(self, path: str | Path) -> None:
        """Load ``save_pretrained``'s weights file in place; every saved tensor must be present (RuntimeError
        listing what is missing or unexpected otherwise)."""
        if self.llm is None:
            self.load_state_dict(load_file(path))
            return
        from vla.hybrid.backbone_llm import saved_state

        tensors = load_file(path)
        expected = saved_state(self.state_dict()).keys()
        missing, unexpected = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
        if missing or unexpected:
            raise RuntimeError(f"missing {missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} "
                               f"({len(unexpected)}) weights")
        self.load_state_dict(tensors, strict=False)
