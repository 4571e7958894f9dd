"""Configuration of the HybridVLA policy (https://arxiv.org/abs/2503.10631)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vla.base import PolicyConfig

Mode = Literal["ensemble", "ar", "diffusion"]
MODES: tuple[str, ...] = ("ensemble", "ar", "diffusion")
Backbone = Literal["tiny", "smollm2"]
BACKBONES: tuple[str, ...] = ("tiny", "smollm2")
Vision = Literal["patches", "tiles"]
VISIONS: tuple[str, ...] = ("patches", "tiles")
#: Image tokens with ``vision="tiles"``: the 9x7 view tiles of Crafter's frame (``tools.models.tile_encoder``);
#: the status bar's tiles are left out, the state token carries the inventory.
TILE_TOKENS = 63


@dataclass
class HybridConfig(PolicyConfig):
    """HybridVLA: one transformer (tiny from scratch, or SmolLM2 + LoRA), an AR head and a diffusion head.

    Args:
        d_model: width of every token (tiny backbone; the LLM backbone uses its hidden size).
        n_layers: transformer blocks (tiny backbone).
        n_heads: attention heads (must divide ``d_model``; tiny backbone).
        patch_size: image patch side in pixels (a multiple of 4: a stride-4 conv, then a stride-patch/4 conv);
            64x64 images give (64/16)^2 = 16 image tokens. ``vision="patches"`` only.
        vision: how the image becomes tokens: ``"patches"`` (a strided conv trained with the policy, patches
            that ignore Crafter's 7-pixel tile grid) or ``"tiles"`` (the tile-aligned CNN of
            ``tools.models.tile_encoder``, one token per view tile, usually initialised from the VLM's encoder
            trained to read every tile: ``TrainConfig.vision_init``). Tiles let the policy see a zombie or lava
            one tile away; 64x64x3 images only.
        freeze_vision: ``vision="tiles"`` only: keep the encoder's weights fixed (a pretrained reader, as VLAs keep
            their vision towers) and train only the projection into the transformer.
        max_instruction_len: instruction bytes kept (longer ones are cut, shorter ones padded).
        dropout: dropout inside the transformer while training.
        num_train_timesteps: DDPM noise levels used in training.
        num_inference_steps: DDIM denoising steps at inference (few, for speed on CPU).
        beta_schedule: diffusers beta schedule name.
        ar_loss_weight: weight of the AR cross-entropy in the joint loss.
        diffusion_loss_weight: weight of the diffusion MSE in the joint loss (0 or ar 0 gives the ablations).
        ensemble_threshold: mean AR confidence at or above which AR and diffusion are averaged;
            below it the diffusion action is used alone (the paper's collaborative ensemble).
        diffusion_temperature: the denoised one-hot relaxation x0 in [-1, 1] becomes probabilities
            by ``softmax(x0 / diffusion_temperature)``.
        action_temperature: discrete actions only: 0 takes the most probable action; T > 0 samples from the
            chosen head's probabilities sharpened by 1/T (the policy's own noise generator, reseeded by ``reset``,
            so a run is reproducible). A deterministic policy in a state its action does not change repeats that
            action forever (seen: a learned skill pressing an unaffordable ``make`` for 50 steps while a zombie
            hit it); sampling leaves such fixed points, but measured in the agent it wandered into more deaths
            (vla/README.md, "Stop 28"), so the default stays 0.
        mode: which prediction ``act`` uses: the ensemble, or one head alone (for ablations).
        num_bins: continuous actions only: uniform bins per action dimension, the AR head's vocabulary
            (256 as in RT-2 / HybridVLA); the AR segment holds ``chunk_size * action_dim`` bin tokens.
        backbone: ``"tiny"`` (from scratch, the default) or ``"smollm2"`` (the embedded SmolLM2-135M's decoder
            layers with LoRA; ``vla/hybrid/backbone_llm.py``).
        llm_layers: smollm2 only: the first N decoder layers are used (0 = all 30); fewer is faster on a CPU.
        llm_instruction_len: smollm2 only: instruction tokens (SmolLM2's tokenizer) kept in the prefix.
        lora_rank: smollm2 only: LoRA rank on q/k/v/o (alpha = 2 x rank).
        lora_top_layers: smollm2 only: LoRA on the last N used layers only (0 = all of them).
        llm_fingerprint: smollm2 only: the base model's architecture fields, recorded at construction; a
            checkpoint whose fingerprint differs from the embedded model's is refused naming both.
    """

    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    patch_size: int = 16
    vision: Vision = "patches"
    freeze_vision: bool = True
    max_instruction_len: int = 20
    dropout: float = 0.1
    num_train_timesteps: int = 100
    num_inference_steps: int = 4
    beta_schedule: str = "squaredcos_cap_v2"
    ar_loss_weight: float = 1.0
    diffusion_loss_weight: float = 1.0
    ensemble_threshold: float = 0.5
    diffusion_temperature: float = 1.0
    action_temperature: float = 0.0
    mode: Mode = "ensemble"
    num_bins: int = 256
    backbone: Backbone = "tiny"
    llm_layers: int = 0
    llm_instruction_len: int = 8
    lora_rank: int = 8
    lora_top_layers: int = 0
    llm_fingerprint: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        height, width, _ = self.image_shape
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model, got {self.d_model=} {self.n_heads=}")
        if self.vision not in VISIONS:
            raise ValueError(f"vision must be one of {VISIONS}, got {self.vision=}")
        if self.vision == "tiles" and tuple(self.image_shape) != (64, 64, 3):
            raise ValueError(f"vision='tiles' reads Crafter's 64x64x3 frames (9x7 tiles of 7 pixels), got "
                             f"{self.image_shape=}; use vision='patches'")
        if self.vision == "patches" and (height % self.patch_size or width % self.patch_size or self.patch_size % 4):
            raise ValueError(f"patch_size must be a multiple of 4 dividing the image sides, got {self.patch_size=} "
                             f"{self.image_shape=}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"need 1 <= num_inference_steps <= num_train_timesteps, got "
                             f"{self.num_inference_steps=} {self.num_train_timesteps=}")
        weights = (self.ar_loss_weight, self.diffusion_loss_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"loss weights must be >= 0 and not both 0, got {self.ar_loss_weight=} "
                             f"{self.diffusion_loss_weight=}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode=}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone=}")
        if min(self.llm_layers, self.lora_top_layers) < 0 or min(self.llm_instruction_len, self.lora_rank) < 1:
            raise ValueError(f"need llm_layers, lora_top_layers >= 0 and llm_instruction_len, lora_rank >= 1, "
                             f"got {self.llm_layers=} {self.lora_top_layers=} {self.llm_instruction_len=} "
                             f"{self.lora_rank=}")
        if self.num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {self.num_bins=}")
        if self.action_temperature < 0:
            raise ValueError(f"action_temperature must be >= 0 (0 = the most probable action), got "
                             f"{self.action_temperature=}")
        if not 0 <= self.dropout < 1 or self.diffusion_temperature <= 0:
            raise ValueError(f"need 0 <= dropout < 1 and diffusion_temperature > 0, got {self.dropout=} "
                             f"{self.diffusion_temperature=}")

    @property
    def num_patches(self) -> int:
        """Image tokens in the prefix."""
        if self.vision == "tiles":
            return TILE_TOKENS
        return (self.image_shape[0] // self.patch_size) * (self.image_shape[1] // self.patch_size)

    @property
    def instruction_len(self) -> int:
        """Instruction tokens in the prefix: bytes (tiny backbone) or SmolLM2 tokens."""
        return self.max_instruction_len if self.backbone == "tiny" else self.llm_instruction_len

    @property
    def prefix_len(self) -> int:
        """Instruction tokens + image tokens + one state token."""
        return self.instruction_len + self.num_patches + 1

    @property
    def ar_vocab(self) -> int:
        """AR token vocabulary (BOS excluded): action indices, or bins of one continuous dimension."""
        return self.num_bins if self.continuous else self.num_actions

    @property
    def ar_len(self) -> int:
        """AR tokens per chunk: one per action, or one per dimension of each continuous action."""
        return self.chunk_size * (self.action_dim if self.continuous else 1)

    @property
    def noisy_dim(self) -> int:
        """Width of one noisy action token: the one-hot relaxation, or the continuous action itself."""
        return self.action_dim if self.continuous else self.num_actions
