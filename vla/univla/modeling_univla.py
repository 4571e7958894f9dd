"""UniVLA (OpenDriveLab/UniVLA, arXiv 2505.06111): latent actions, a latent policy, a per-embodiment action decoder.

One ``Policy`` holds the three parts, and ``config.stage`` says which one ``forward`` trains (the others are
frozen and kept in eval mode): ``lam1``/``lam2`` the latent action model (``lam.py``), ``policy`` the latent
policy on the model's task-centric codes, ``decoder`` the action decoder. Only ``decoder`` reads action
labels. At inference the latent policy reads (instruction, image, state) and its K latent-action hidden
states plus its visual tokens go through the action decoder (MAP attention pooling over each, as UniVLA's
``transformer_utils.py``) to Crafter's action logits.

The latent policy predicts the K codes in one pass (UniVLA's 7B LLM emits ``<ACT_i>`` tokens one by one):
the codes of one step are few, and one pass keeps the policy fast on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from vla.base import CONFIG_FILE, CheckpointError, Policy
from vla.hybrid.processor_hybrid import PAD_TOKEN, VOCAB_SIZE, tokenize_instructions
from vla.univla.configuration_univla import LAM_FIELDS, UniVLAConfig
from vla.univla.data import stage_frames
from vla.univla.lam import LatentActionModel, patchify, transformer
from vla.univla.training import train_stages


class LatentPolicy(nn.Module):
    """[instruction bytes | image patches | state | K queries] -> per query, logits over the task-centric codes."""

    def __init__(self, config: UniVLAConfig) -> None:
        super().__init__()
        self.config = c = config
        d = c.d_model
        self.lang = nn.Embedding(VOCAB_SIZE, d)
        self.patch = nn.Linear(c.patch_size ** 2 * c.image_shape[2], d)
        self.state = nn.Sequential(nn.Linear(c.state_dim, d), nn.LayerNorm(d))
        self.pos = nn.Parameter(torch.randn(1, c.max_instruction_len + c.num_patches() + 1, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, c.num_queries, d) * 0.02)
        self.body = transformer(d, c.n_layers, c.n_heads, c.dropout)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.num_codes)

    def forward(self, image: torch.Tensor, state: torch.Tensor, instruction: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(code logits (B, K, codes), latent-action hidden states (B, K, d), visual hidden states (B, P, d))."""
        c = self.config
        prefix = torch.cat([self.lang(instruction), self.patch(patchify(image, c.patch_size)),
                            self.state(state.float().clamp(0, 9) / 9)[:, None]], 1) + self.pos
        b, l_, p = len(prefix), c.max_instruction_len, c.num_patches()
        mask = torch.cat([instruction == PAD_TOKEN, torch.zeros(b, p + 1 + c.num_queries, dtype=torch.bool)], 1)
        h = self.norm(self.body(torch.cat([prefix, self.queries.expand(b, -1, -1)], 1), src_key_padding_mask=mask))
        latent = h[:, -c.num_queries:]
        return self.head(latent), latent, h[:, l_:l_ + p]


class AttentionPool(nn.Module):
    """Multihead attention pooling (MAP): one learnt probe attends over a token set."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.attention(self.probe.expand(len(tokens), -1, -1), tokens, tokens, need_weights=False)
        return self.norm(pooled[:, 0])


class ActionDecoder(nn.Module):
    """Crafter's action decoder: MAP over the latent-action hidden states and over the visual tokens -> logits
    of the next ``chunk_size`` actions."""

    def __init__(self, config: UniVLAConfig) -> None:
        super().__init__()
        self.config = c = config
        self.latent_pool, self.visual_pool = AttentionPool(c.d_model, c.n_heads), AttentionPool(c.d_model, c.n_heads)
        self.mlp = nn.Sequential(nn.Linear(2 * c.d_model, c.decoder_dim), nn.GELU(), nn.Dropout(c.dropout),
                                 nn.Linear(c.decoder_dim, c.chunk_size * c.num_actions))

    def forward(self, latent: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([self.latent_pool(latent), self.visual_pool(visual)], -1)
        return self.mlp(pooled).view(len(latent), self.config.chunk_size, self.config.num_actions)


def check_lam_compatible(saved: dict, config: UniVLAConfig, where: Path) -> None:
    """Raise :class:`CheckpointError` naming both when a checkpoint's frame size or codebook is not ``config``'s."""
    theirs = UniVLAConfig(**{k: v for k, v in saved.items() if k in UniVLAConfig.__dataclass_fields__})
    differ = [name for name in LAM_FIELDS if getattr(theirs, name) != getattr(config, name)]
    if differ:
        def describe(c: UniVLAConfig) -> str:
            h, w, _ = c.image_shape
            return (f"frames {h}x{w}, codebook {c.num_codes} codes x {c.code_dim} dims, {c.num_queries} queries"
                    + "".join(f", {n}={getattr(c, n)}" for n in differ if n not in ("image_shape", "num_codes",
                                                                                      "code_dim", "num_queries")))
        raise CheckpointError(f"latent action model {where}: {describe(theirs)}; this config needs {describe(config)} "
                              f"(differs in {', '.join(differ)})")


class UniVLAPolicy(Policy):
    """Latent action model + latent policy + action decoder; ``config.stage`` picks what ``forward`` trains."""

    name = "univla"
    config_class = UniVLAConfig
    #: ``vla.train.train`` reads each stage's rows through this and runs stage ``"all"`` through ``train_stages``.
    training_frames = staticmethod(stage_frames)
    train_stages = staticmethod(train_stages)

    def __init__(self, config: UniVLAConfig) -> None:
        super().__init__(config)
        self.lam = LatentActionModel(self.config)
        self.policy = LatentPolicy(self.config)
        self.decoder = ActionDecoder(self.config)
        stage = self.config.stage
        self.requires_grad_(False)
        trained = (self.lam.stage_modules(stage) if stage in ("lam1", "lam2")
                   else [self.policy] if stage == "policy" else [self.decoder])
        for part in trained:
            part.requires_grad_(True)
        self._trained = trained

    def train(self, mode: bool = True) -> UniVLAPolicy:
        """Train mode for the parts this stage trains only: frozen parts keep eval mode (no dropout)."""
        super().train(False)
        for part in self._trained:
            if isinstance(part, nn.Module):
                part.train(mode)
        self.training = mode
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        stage = self.config.stage
        if stage in ("lam1", "lam2"):
            return self.lam(batch, stage)
        if stage == "policy":
            codes = self.lam.latent_actions(batch["image"], batch["next_image"])
            logits, _, _ = self.policy(batch["image"], batch["state"], batch["instruction"])
            loss = F.cross_entropy(logits.flatten(0, 1), codes.flatten())
            accuracy = (logits.argmax(-1) == codes).float().mean().item()
            return loss, {"loss": loss.item(), "code_accuracy": accuracy}
        with torch.no_grad():
            _, latent, visual = self.policy(batch["image"], batch["state"], batch["instruction"])
        logits = self.decoder(latent, visual)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["action"].flatten())
        accuracy = (logits[:, 0].argmax(-1) == batch["action"][:, 0]).float().mean().item()
        return loss, {"loss": loss.item(), "action_accuracy": accuracy}

    def action_logits(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        image = torch.as_tensor(np.asarray(obs["image"], np.uint8))
        state = torch.as_tensor(np.asarray(obs["state"], np.float32))
        tokens = tokenize_instructions(instructions, self.config.max_instruction_len)
        _, latent, visual = self.policy(image, state, tokens)
        return self.decoder(latent, visual)

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        return self.action_logits(obs, instructions).argmax(-1)

    @torch.no_grad()
    def validate(self, data, batch_size: int = 256) -> dict[str, float]:
        """Mean loss terms of this stage on held-out rows, and how many codes of each codebook the rows use
        (a collapsed codebook uses one)."""
        self.eval()
        sums: dict[str, float] = {}
        used: dict[str, set[int]] = {"1": set(), "2": set()}
        for start in range(0, len(data), batch_size):
            batch = data[slice(start, start + batch_size)]
            _, info = self(batch)
            if self.config.stage in ("lam1", "lam2"):
                enc = self.lam.encode(batch["image"], batch["next_image"], batch["instruction"], self.config.stage)
                for key in used:
                    if f"codes{key}" in enc:
                        used[key].update(enc[f"codes{key}"].unique().tolist())
            n = len(batch["image"])
            for key, value in info.items():
                if not key.startswith("codes_used"):
                    sums[key] = sums.get(key, 0.0) + value * n
        result = {key: round(value / max(len(data), 1), 5) for key, value in sums.items()}
        result.update({f"codes_used_{key}": len(codes) for key, codes in used.items() if codes})
        return result

    def load_weights(self, path: str | Path) -> None:
        """Load a checkpoint's weights in place (a stage's start, a resume); one whose latent action model has
        another frame size or codebook is refused naming both."""
        path = Path(path)
        config_file = path.parent / CONFIG_FILE
        if config_file.is_file():
            check_lam_compatible(json.loads(config_file.read_text(encoding="utf-8")), self.config, path.parent)
        try:
            self.load_state_dict(load_file(path))
        except (RuntimeError, FileNotFoundError) as exc:
            raise CheckpointError(f"{path}: not weights of this UniVLA config ({exc})") from exc
