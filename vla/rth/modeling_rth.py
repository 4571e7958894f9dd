"""RT-H: an action hierarchy through language motions (https://arxiv.org/abs/2403.01823).

RT-H asks one VLM two questions: (task, image) -> a *language motion* ("move arm forward", here also
"face the tree"), then (task, image, motion) -> the action. Here one small transformer reads

    [instruction bytes (L), image patches (P), state (1), query (1)]

and answers both: with the learned motion-query token in the last slot it classifies the motion (over the
vocabulary ``config.motions``); with the motion's embedding there it predicts the action (Crafter's index,
or a Meta-World vector through tanh). Training teacher-forces the dataset's motion into the action query
(both questions share every weight but the two heads), as RT-H trains both queries on the same data.

A correction replaces the predicted motion: :meth:`RTHPolicy.override` sets a phrase for the next
``override_steps`` actions; the rows acted under it are kept (observation, instruction, motion, action) as
intervention data (``vla.rth.corrections``), from which ``finetune_motion`` learns the high-level query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla.base import Policy
from vla.hybrid.modeling_hybrid import Block
from vla.hybrid.processor_hybrid import VOCAB_SIZE, tokenize_instructions
from vla.rth.configuration_rth import RTHConfig
from vla.rth.data_rth import MotionFrames, load_motion_frames


@dataclass
class Intervention:
    """One step acted under a corrected motion: what the intervention data records."""

    obs: dict[str, np.ndarray]
    instruction: str
    motion: str
    predicted: str
    action: int | np.ndarray


class RTHPolicy(Policy):
    config_class = RTHConfig
    name = "rth"

    def __init__(self, config: RTHConfig) -> None:
        super().__init__(config)
        config = self.config
        d, channels = config.d_model, config.image_shape[2]
        self.instruction_embed = nn.Embedding(VOCAB_SIZE, d)
        self.patchify = nn.Sequential(nn.Conv2d(channels, d, 4, 4), nn.GELU(),
                                      nn.Conv2d(d, d, config.patch_size // 4, config.patch_size // 4))
        self.state_embed = nn.Linear(config.state_dim, d)
        self.position = nn.Parameter(torch.zeros(config.max_instruction_len + config.num_patches + 2, d))
        self.motion_query = nn.Parameter(torch.zeros(d))
        self.motion_embed = nn.Embedding(config.num_motions, d)
        self.blocks = nn.ModuleList(Block(d, config.n_heads, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.motion_head = nn.Linear(d, config.num_motions)
        out = config.chunk_size * (config.action_dim if config.continuous else config.num_actions)
        self.action_head = nn.Linear(d, out)
        nn.init.normal_(self.position, std=0.02)
        nn.init.normal_(self.motion_query, std=0.02)
        if config.trainable == "motion":  # fine-tune the high-level query only: the action query is untouched
            for name, parameter in self.named_parameters():
                parameter.requires_grad = name == "motion_query" or name.startswith("motion_head.")
        self._override: tuple[str, int] | None = None  # (phrase, steps left)
        self.interventions: list[Intervention] = []
        self.last_motion = ""
        self.last_instruction = ""

    # --- the two queries -----------------------------------------------------------------
    def prefix(self, image: torch.Tensor, state: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        """(B, L + P + 1, D) tokens of instruction bytes, image patches and state."""
        pixels = image.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, C, H, W) in [-1, 1]
        patches = self.patchify(pixels).flatten(2).transpose(1, 2)  # (B, P, D)
        state_token = self.state_embed(torch.sign(state) * torch.log1p(state.abs()))[:, None]  # (B, 1, D)
        return torch.cat([self.instruction_embed(instruction), patches, state_token], dim=1)

    def answer(self, prefix: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(B, D) the transformer's output at the query slot, ``query`` (B, D) the last token."""
        x = torch.cat([prefix, query[:, None]], dim=1) + self.position  # (B, T, D)
        for block in self.blocks:
            x, _ = block(x, None)
        return self.norm(x[:, -1])

    def motion_logits(self, prefix: torch.Tensor) -> torch.Tensor:
        """Query 1: (B, M) motion logits."""
        return self.motion_head(self.answer(prefix, self.motion_query.expand(len(prefix), -1)))

    def action_output(self, prefix: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """Query 2 given motion indices (B,): (B, chunk, A) action logits, or (B, chunk, A) vectors in [-1, 1]."""
        out = self.action_head(self.answer(prefix, self.motion_embed(motion)))
        out = out.view(len(prefix), self.config.chunk_size, -1)
        return torch.tanh(out) if self.config.continuous else out

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Motion cross-entropy + action loss (cross-entropy, or MSE on actions scaled to [-1, 1]) with the true
        motion teacher-forced. ``batch``: image (B, H, W, C), state (B, S), instruction (B, L), motion (B,),
        action (B, chunk) or (B, chunk, A)."""
        prefix = self.prefix(batch["image"], batch["state"], batch["instruction"])
        motion = batch["motion"]
        logits = self.motion_logits(prefix)
        motion_loss = F.cross_entropy(logits, motion)
        action = self.action_output(prefix, motion)
        if self.config.continuous:
            action_loss = F.mse_loss(action, self.scale(batch["action"]))
            accuracy = float("nan")
        else:
            action_loss = F.cross_entropy(action.flatten(0, 1), batch["action"].flatten())
            accuracy = (action.argmax(-1) == batch["action"]).float().mean().item()
        loss = self.config.motion_loss_weight * motion_loss + action_loss
        info = {"loss": loss.item(), "motion_loss": motion_loss.item(), "action_loss": action_loss.item(),
                "motion_accuracy": (logits.argmax(-1) == motion).float().mean().item()}
        if not self.config.continuous:
            info["action_accuracy"] = accuracy
        return loss, info

    def scale(self, action: torch.Tensor) -> torch.Tensor:
        low, high = self.config.action_low, self.config.action_high
        return (action - low) / (high - low) * 2 - 1

    def unscale(self, action: torch.Tensor) -> torch.Tensor:
        low, high = self.config.action_low, self.config.action_high
        return (action + 1) / 2 * (high - low) + low

    # --- vla.train's hooks ----------------------------------------------------------------
    @classmethod
    def training_frames(cls, cfg) -> MotionFrames:
        """The dataset's rows with their motion indices; sets ``cfg.policy.motions`` (the vocabulary) before
        ``vla.train`` builds the policy from it. Raises :class:`MissingMotionsError` without the column."""
        frames, cfg.policy.motions = load_motion_frames(cfg.data, cfg.policy.chunk_size,
                                                        cfg.policy.max_instruction_len, cfg.policy.motions)
        return frames

    @torch.no_grad()
    def validate(self, data: MotionFrames, batch_size: int = 256) -> dict[str, float]:
        """Held-out loss terms, motion accuracy, and the action's accuracy (or MSE) both given the true motion
        and through the whole hierarchy (the predicted motion)."""
        self.eval()
        sums: dict[str, float] = {}
        for start in range(0, len(data), batch_size):
            batch = data[slice(start, start + batch_size)]
            _, info = self(batch)
            prefix = self.prefix(batch["image"], batch["state"], batch["instruction"])
            out = self.action_output(prefix, self.motion_logits(prefix).argmax(-1))
            if self.config.continuous:
                info["action_mse_predicted_motion"] = (self.unscale(out) - batch["action"]).square().mean().item()
            else:
                info["action_accuracy_predicted_motion"] = (out.argmax(-1) == batch["action"]).float().mean().item()
            for key, value in info.items():
                sums[key] = sums.get(key, 0.0) + value * len(batch["motion"])
        return {key: round(value / max(1, len(data)), 4) for key, value in sums.items()}

    # --- inference -----------------------------------------------------------------------
    def _prefix(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        self.config.check_observation(obs)
        return self.prefix(torch.as_tensor(np.asarray(obs["image"], np.uint8)),
                           torch.as_tensor(np.asarray(obs["state"], np.float32)),
                           tokenize_instructions(instructions, self.config.max_instruction_len))

    @torch.no_grad()
    def predict_motion(self, obs: dict[str, np.ndarray], instructions: list[str]) -> torch.Tensor:
        """Query 1 on a batch: (B, M) motion probabilities."""
        return self.motion_logits(self._prefix(obs, instructions)).softmax(-1)

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict[str, np.ndarray], instructions: list[str],
                             motions: list[str] | None = None) -> torch.Tensor:
        """Both queries on a batch (the motion given, or predicted): (B, chunk) indices or (B, chunk, A) vectors."""
        prefix = self._prefix(obs, instructions)
        if motions is None:
            motion = self.motion_logits(prefix).argmax(-1)
        else:
            motion = torch.tensor([self.motion_index(m) for m in motions], dtype=torch.long)
        out = self.action_output(prefix, motion)
        return self.unscale(out) if self.config.continuous else out.argmax(-1)

    def motion_index(self, phrase: str) -> int:
        if phrase not in self.config.motions:
            raise ValueError(f"motion {phrase!r} is not in this policy's vocabulary of {len(self.config.motions)}")
        return self.config.motions.index(phrase)

    # --- corrections ---------------------------------------------------------------------
    def override(self, phrase: str, steps: int | None = None) -> int:
        """Replace the predicted motion with ``phrase`` for the next ``steps`` actions (default
        ``config.override_steps``); returns the steps. ValueError when ``phrase`` is not in the vocabulary."""
        self.motion_index(phrase)
        steps = self.config.override_steps if steps is None else steps
        self._override = (phrase, steps)
        return steps

    @property
    def active_override(self) -> tuple[str, int] | None:
        """(phrase, actions left) of the correction in force, or None."""
        return self._override

    def clear_override(self) -> None:
        self._override = None

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], instruction: str) -> int | np.ndarray:
        """One env action: the motion query (or the correction in force), then the action query; a step acted
        under a correction is kept in ``interventions``."""
        if self._queue:
            return self._queue.popleft()
        self.config.check_observation(obs)
        self.last_instruction = instruction
        batch = {key: np.asarray(value)[None] for key, value in obs.items()}
        prefix = self._prefix(batch, [instruction])
        predicted = self.config.motions[int(self.motion_logits(prefix).argmax(-1))] if self.config.motions else ""
        motion, corrected = predicted, self._override is not None
        if self._override is not None:
            motion, left = self._override
            self._override = (motion, left - 1) if left > 1 else None
        self.last_motion = motion
        out = self.action_output(prefix, torch.tensor([self.motion_index(motion)]))[0]
        chunk = self.unscale(out).numpy().astype(np.float32) if self.config.continuous else out.argmax(-1).tolist()
        self._queue.extend(chunk)
        action = self._queue.popleft()
        if corrected:
            self.interventions.append(Intervention({k: np.array(v) for k, v in obs.items()}, instruction, motion,
                                                   predicted, action))
        return action
