"""Configuration of the UniVLA policy (OpenDriveLab/UniVLA, arXiv 2505.06111), sized for 2 CPU cores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vla.base import PolicyConfig

Stage = Literal["all", "lam1", "lam2", "policy", "decoder"]
#: The training stages in order; ``"all"`` (the default of a fresh config) runs them one after another.
STAGES: tuple[str, ...] = ("lam1", "lam2", "policy", "decoder")
#: The stages that train without action labels (any episodes: expert, random, failed).
UNLABELLED_STAGES: tuple[str, ...] = ("lam1", "lam2", "policy")
#: Config fields that fix the latent action model's weights and codes: a checkpoint whose values differ
#: cannot give this config's latent actions (``vla.univla.modeling_univla.check_lam_compatible``).
LAM_FIELDS: tuple[str, ...] = ("image_shape", "lam_patch_size", "lam_dim", "lam_layers", "num_queries",
                               "num_codes", "code_dim", "frame_gap", "max_instruction_len")


@dataclass
class UniVLAConfig(PolicyConfig):
    """Latent action model (two VQ stages) + latent policy + per-embodiment action decoder.

    Args:
        stage: what ``forward`` trains: ``lam1`` (the latent action model conditioned on the instruction: its
            codebook holds task-irrelevant dynamics), ``lam2`` (no language, codebook 1 frozen, a second,
            task-centric codebook), ``policy`` (instruction + image -> task-centric codes), ``decoder`` (codes'
            hidden states + image -> actions, the only stage that reads action labels); ``all``: each in turn.
        lam_patch_size: pixel patch side of the latent action model's frames (16: ~2 Crafter tiles; 8, one
            tile, trained at 23 samples/s against 77 on the shared 2-core CPU, too slow for minutes of training).
        lam_dim: width of the latent action model's encoder and decoder tokens.
        lam_layers: transformer blocks in each of its encoder and decoder.
        num_queries: learnable action-query tokens per frame pair (UniVLA: 4), so each step gets that many codes.
        num_codes: entries of each VQ codebook (UniVLA: 16).
        code_dim: width of a codebook entry.
        commitment: weight of the commitment loss (UniVLA: 0.25).
        restart_every: training steps between dead-code restarts (a code no row picked since the last restart is
            moved onto a random encoder output of the current batch).
        frame_gap: k of the frame pair (o_t, o_t+k), in env steps.
        d_model: width of the latent policy's tokens.
        n_layers: transformer blocks of the latent policy.
        n_heads: attention heads (latent action model and policy; must divide both widths).
        patch_size: pixel patch side of the policy's image tokens.
        max_instruction_len: instruction bytes kept (stage 1 of the latent action model and the policy read them).
        decoder_dim: width of the action decoder's attention pooling.
        dropout: dropout in the transformers while training.
        unlabelled_data: extra episode datasets (any policy: random, failed rollouts; actions ignored) that the
            latent action model trains on besides ``TrainConfig.data``.
        label_fraction: share of ``TrainConfig.data``'s rows (its first episodes) whose action labels the action
            decoder may read; the other stages read no labels at all.
        lam_checkpoint: a trained UniVLA checkpoint folder whose latent action model (both stages) is reused:
            ``all`` then starts at the ``policy`` stage. Its frame size and codebook must equal this config's.
    """

    stage: Stage = "all"
    lam_patch_size: int = 16
    lam_dim: int = 64
    lam_layers: int = 2
    num_queries: int = 4
    num_codes: int = 16
    code_dim: int = 32
    commitment: float = 0.25
    restart_every: int = 50
    frame_gap: int = 1
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    patch_size: int = 16
    max_instruction_len: int = 20
    decoder_dim: int = 64
    dropout: float = 0.1
    unlabelled_data: tuple[str, ...] = ()
    label_fraction: float = 0.1
    lam_checkpoint: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unlabelled_data = tuple(str(v) for v in self.unlabelled_data)
        if self.stage not in ("all", *STAGES):
            raise ValueError(f"stage must be 'all' or one of {STAGES}, got {self.stage=}")
        if self.continuous:
            raise ValueError("UniVLA here has a discrete action decoder only (Crafter); a continuous (Meta-World) "
                             "decoder is not built")
        height, width, _ = self.image_shape
        for name in ("lam_patch_size", "patch_size"):
            if height % getattr(self, name) or width % getattr(self, name):
                raise ValueError(f"{name} must divide the image sides, got {getattr(self, name)} for "
                                 f"{self.image_shape=}")
        for name in ("lam_dim", "d_model"):
            if getattr(self, name) % self.n_heads:
                raise ValueError(f"n_heads must divide {name}, got {getattr(self, name)=} {self.n_heads=}")
        for name in ("lam_layers", "num_queries", "num_codes", "code_dim", "restart_every", "frame_gap", "n_layers",
                     "max_instruction_len", "decoder_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)=}")
        if self.num_codes < 2:
            raise ValueError(f"num_codes must be >= 2, got {self.num_codes=}")
        if not 0 < self.label_fraction <= 1:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction=}")
        if not 0 <= self.dropout < 1 or self.commitment < 0:
            raise ValueError(f"need 0 <= dropout < 1 and commitment >= 0, got {self.dropout=} {self.commitment=}")

    def lam_patches(self) -> int:
        return (self.image_shape[0] // self.lam_patch_size) * (self.image_shape[1] // self.lam_patch_size)

    def num_patches(self) -> int:
        return (self.image_shape[0] // self.patch_size) * (self.image_shape[1] // self.patch_size)
