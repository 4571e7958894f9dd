"""DreamerV3's recurrent state-space model (RSSM) in PyTorch, with heads for Crafter's state vector.

Hafner et al., "Mastering Diverse Domains through World Models", arXiv:2301.04104
(reference code: github.com/danijar/dreamerv3, ``dreamerv3/rssm.py``).

The model state is h (a block-diagonal GRU) plus z (``stoch`` categoricals of ``classes``
classes, 1% uniform mix). The prior p(z | h) imagines; the posterior q(z | h, embed) filters
real frames. KL balancing trains the prior hard (``dyn_scale``) and the posterior gently
(``rep_scale``), each clipped below ``free_nats`` so the model is not pushed to forget detail.
Heads decode the image, the state vector (inventory + achievements, so imagined outcomes can be
checked against a subgoal), the reward and the continuation flag. A small skill-conditioned
action prior (behaviour cloning on the scripted experts, on detached features) lets a skill be
rolled forward inside imagination without the simulator.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tools.models.hub import HubMixin
from world_models.base import Latent, WorldModel
from world_models.config import RSSMConfig
from world_models.networks import MLP, BlockLinear, Decoder, Encoder, NormLinear, symexp, symlog

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class RSSM(nn.Module):
    """The latent dynamics: ``step`` (imagine one step) and ``observe_step`` (filter one frame)."""

    def __init__(self, cfg: RSSMConfig, embed_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        flat = cfg.stoch * cfg.classes
        self.dynin = nn.ModuleList([NormLinear(cfg.deter, cfg.hidden), NormLinear(flat, cfg.hidden),
                                    NormLinear(cfg.action_dim, cfg.hidden)])
        group_in = cfg.deter // cfg.blocks + 3 * cfg.hidden
        self.dynhid = BlockLinear(cfg.blocks * group_in, cfg.deter, cfg.blocks)
        self.dynnorm = nn.LayerNorm(cfg.deter)
        self.gru = BlockLinear(cfg.deter, 3 * cfg.deter, cfg.blocks)
        self.prior = MLP(cfg.deter, flat, cfg.hidden)
        self.posterior = MLP(cfg.deter + embed_dim, flat, cfg.hidden)

    def core(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """h_t = GRU(h_{t-1}, z_{t-1}, a_{t-1}); all (B, ...) -> (B, D)."""
        cfg = self.cfg
        action = action / torch.clamp(action.abs(), min=1).detach()
        x = torch.cat([m(v) for m, v in zip(self.dynin, (deter, stoch.flatten(-2), action), strict=True)], -1)
        groups = deter.reshape(-1, cfg.blocks, cfg.deter // cfg.blocks)  # (B, G, D/G)
        x = torch.cat([groups, x[:, None].expand(-1, cfg.blocks, -1)], -1).flatten(1)  # (B, G * (D/G + 3H))
        x = F.silu(self.dynnorm(self.dynhid(x)))  # (B, D)
        gates = self.gru(x).reshape(-1, cfg.blocks, 3, cfg.deter // cfg.blocks)  # (B, G, 3, D/G)
        reset, cand, update = (gates[:, :, i].flatten(1) for i in range(3))
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * deter

    def dist(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw outputs (B, S*C) -> log-probabilities (B, S, C) with ``unimix`` uniform mixed in."""
        probs = F.softmax(raw.reshape(*raw.shape[:-1], self.cfg.stoch, self.cfg.classes).float(), -1)
        probs = (1 - self.cfg.unimix) * probs + self.cfg.unimix / self.cfg.classes
        return torch.log(probs).to(raw.dtype)

    @staticmethod
    def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-hot sample (Gumbel-max) with straight-through gradients: (B, S, C)."""
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-9, 1 - 1e-9))).to(logits.dtype)
        onehot = F.one_hot((logits + gumbel).argmax(-1), logits.shape[-1]).to(logits.dtype)
        probs = logits.exp()
        return onehot + probs - probs.detach()

    def step(self, carry: Latent, action: torch.Tensor, generator: torch.Generator | None = None) -> Latent:
        deter = self.core(carry.deter, carry.stoch, action)
        logits = self.dist(self.prior(deter))
        return Latent(deter, self.sample(logits, generator), logits)

    def observe_step(self, carry: Latent, action: torch.Tensor, embed: torch.Tensor,
                     generator: torch.Generator | None = None) -> tuple[Latent, torch.Tensor]:
        deter = self.core(carry.deter, carry.stoch, action)
        prior = self.dist(self.prior(deter))
        logits = self.dist(self.posterior(torch.cat([deter, embed], -1)))
        return Latent(deter, self.sample(logits, generator), logits), prior


def categorical_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) summed over the latents: (..., S, C) -> (...)."""
    return (logp.exp() * (logp - logq)).sum((-2, -1))


def _encode_config(cfg: RSSMConfig) -> dict[str, Any]:
    return cfg.to_dict()


class RSSMWorldModel(WorldModel, HubMixin, coders={RSSMConfig: (_encode_config, RSSMConfig.from_dict)},
                     library_name="embodia", tags=["world-model", "dreamerv3", "rssm"],
                     paper_url="https://arxiv.org/abs/2301.04104"):
    """Encoder, RSSM, decoder and heads; saved as ``config.json`` + ``model.safetensors``.

    Batches are dicts of (B, T, ...) tensors: ``image`` uint8 (H, W, 3), ``state`` float,
    ``prev_action`` (the action that led to the frame: int index, -1 for none, or a float
    vector), ``is_first``, ``is_terminal``, ``reward``, and for the action prior ``action``
    (taken at the frame) and ``skill`` (index into ``config.skills``, -1 for none).
    """

    def __init__(self, config: RSSMConfig | dict[str, Any]) -> None:
        super().__init__()
        # huggingface_hub hands the raw config.json dict to a bare from_pretrained(folder_or_hub_id): with
        # postponed annotations it cannot see that ``config`` is an RSSMConfig, so its coder is not applied.
        config = RSSMConfig.from_dict(config) if isinstance(config, dict) else config
        self.config = config
        cfg = config
        self.encoder = Encoder(cfg.image_size, cfg.state_dim, cfg.depth, cfg.hidden)
        self.rssm = RSSM(cfg, self.encoder.outputs)
        self.decoder = Decoder(cfg.latent_dim, cfg.image_size, cfg.depth)
        self.state_head = MLP(cfg.latent_dim, cfg.state_dim, cfg.hidden)
        self.reward_head = MLP(cfg.latent_dim, 1, cfg.hidden)
        self.cont_head = MLP(cfg.latent_dim, 1, cfg.hidden)
        self.policy_head = MLP(cfg.latent_dim + len(cfg.skills), cfg.action_dim, cfg.hidden) if cfg.skills else None
        self.to(device=cfg.torch_device, dtype=cfg.torch_dtype)

    @property
    def device(self) -> torch.device:
        return self.rssm.gru.weight.device

    # --- carry ---
    def initial(self, batch_size: int) -> Latent:
        cfg = self.config
        dtype = self.rssm.gru.weight.dtype
        zeros = torch.zeros(batch_size, cfg.stoch, cfg.classes, device=self.device, dtype=dtype)
        return Latent(torch.zeros(batch_size, cfg.deter, device=self.device, dtype=dtype), zeros,
                      torch.full_like(zeros, -torch.log(torch.tensor(float(cfg.classes))).item()))

    def action_input(self, action: torch.Tensor) -> torch.Tensor:
        """Env actions -> model inputs: int indices (-1 = none) to one-hot, vectors clipped to [-1, 1]."""
        dtype = self.rssm.gru.weight.dtype
        action = action.to(self.device)
        if self.config.action_kind == "discrete":
            valid = (action >= 0).to(dtype)[..., None]
            return F.one_hot(action.long().clamp(min=0), self.config.action_dim).to(dtype) * valid
        return action.to(dtype).clamp(-1, 1)

    # --- observe / imagine ---
    def observe(self, carry: Latent, image: torch.Tensor, state: torch.Tensor, prev_action: torch.Tensor,
                is_first: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[Latent, Latent, torch.Tensor]:
        embed = self.encoder(image.to(self.device), state.to(self.device))  # (B, T, E)
        actions = self.action_input(prev_action)  # (B, T, A)
        keep = (~is_first.to(self.device).bool()).to(embed.dtype)  # (B, T)
        posts, priors = [], []
        for t in range(embed.shape[1]):
            mask = keep[:, t, None]
            init = self.initial(embed.shape[0])
            carry = Latent(carry.deter * mask + init.deter * (1 - mask),
                           carry.stoch * mask[..., None] + init.stoch * (1 - mask[..., None]), carry.logits)
            carry, prior = self.rssm.observe_step(carry, actions[:, t] * mask, embed[:, t], generator)
            posts.append(carry)
            priors.append(prior)
        return carry, Latent.stack(posts), torch.stack(priors, 1)

    def imagine(self, carry: Latent, actions: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[Latent, Latent]:
        inputs = self.action_input(actions)  # (B, T, A)
        steps = []
        for t in range(inputs.shape[1]):
            carry = self.rssm.step(carry, inputs[:, t], generator)
            steps.append(carry)
        return carry, Latent.stack(steps)

    def policy(self, carry: Latent, skill: torch.Tensor, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Sample an action from the skill-conditioned action prior: skill (B,) indices -> actions (B,).

        A temperature below 1 sharpens the cloned action distribution towards the expert's usual choice.
        """
        if self.policy_head is None:
            raise ValueError("this world model was trained without skills, so it has no action prior")
        if self.config.action_kind != "discrete":
            raise ValueError("the action prior samples discrete actions only")
        onehot = F.one_hot(skill.long(), len(self.config.skills)).to(carry.deter.dtype)
        logits = self.policy_head(torch.cat([carry.feat(), onehot], -1)).float() / temperature  # (B, A)
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
        return (logits - torch.log(-torch.log(uniform.clamp(1e-9, 1 - 1e-9)))).argmax(-1)

    @torch.no_grad()
    def predict(self, latent: Latent, image: bool = True) -> dict[str, torch.Tensor]:
        """Decode model states (...) into observations: image in [0, 1], state, reward, continuation prob."""
        feat = latent.feat()
        out = {
            "state": symexp(self.state_head(feat)).float(),
            "reward": symexp(self.reward_head(feat)[..., 0]).float(),
            "cont": torch.sigmoid(self.cont_head(feat)[..., 0]).float(),
        }
        if image:
            out["image"] = self.decoder(feat).float().clamp(0, 1)
        return out

    # --- training ---
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss (``forward`` so that DDP wrappers from ``accelerate`` see the call)."""
        return self.loss(batch)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        batch = {k: v.to(self.device) for k, v in batch.items()}
        batch_size = batch["image"].shape[0]
        _, post, prior = self.observe(self.initial(batch_size), batch["image"], batch["state"],
                                      batch["prev_action"], batch["is_first"])
        feat = post.feat()  # (B, T, L)
        dtype = feat.dtype
        target = batch["image"].to(dtype) / 255.0  # (B, T, H, W, 3)
        parts = {
            "image": ((self.decoder(feat) - target) ** 2).sum((-3, -2, -1)),
            "state": ((self.state_head(feat) - symlog(batch["state"].to(dtype))) ** 2).sum(-1),
            "reward": (self.reward_head(feat)[..., 0] - symlog(batch["reward"].to(dtype))) ** 2,
            "cont": F.binary_cross_entropy_with_logits(self.cont_head(feat)[..., 0],
                                                       1 - batch["is_terminal"].to(dtype), reduction="none"),
            "dyn": categorical_kl(post.logits.detach(), prior).clamp(min=cfg.free_nats),
            "rep": categorical_kl(post.logits, prior.detach()).clamp(min=cfg.free_nats),
        }
        scales = {"image": cfg.image_scale, "state": cfg.state_scale, "reward": cfg.reward_scale,
                  "cont": cfg.cont_scale, "dyn": cfg.dyn_scale, "rep": cfg.rep_scale}
        total = sum(scales[k] * v.mean() for k, v in parts.items())
        metrics = {k: float(v.detach().mean()) for k, v in parts.items()}
        if self.policy_head is not None and "skill" in batch:
            labelled = (batch["skill"] >= 0) & (batch["action"] >= 0)  # (B, T)
            if labelled.any():
                onehot = F.one_hot(batch["skill"].long().clamp(min=0), len(cfg.skills)).to(dtype)
                logits = self.policy_head(torch.cat([feat.detach(), onehot], -1))[labelled]  # (N, A)
                policy = F.cross_entropy(logits.float(), batch["action"][labelled].long())
                total = total + cfg.policy_scale * policy
                metrics["policy"] = float(policy.detach())
        metrics["loss"] = float(total.detach())
        return total, metrics


def read_config(path: str | Path) -> RSSMConfig:
    """The config stored beside a checkpoint's weights (``config.json``)."""
    file = Path(path) / CONFIG_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file} not found: a world-model checkpoint is a folder with "
                                f"{CONFIG_FILE} and {WEIGHTS_FILE}")
    return RSSMConfig.from_json_file(file)


def load_world_model(path: str | Path, expect: RSSMConfig | None = None, device: str | None = None) -> RSSMWorldModel:
    """Load a checkpoint folder (or hub id), refusing one made for another world than ``expect``.

    Raises:
        ValueError: naming the checkpoint's and the expected env/observation/action shapes.
    """
    local = Path(path)
    if local.exists():
        stored = read_config(local)
        if expect is not None and stored.mismatch(expect):
            raise ValueError(f"world-model checkpoint {local} was trained for a different world: "
                             f"{'; '.join(stored.mismatch(expect))} (checkpoint vs expected)")
        config = replace(stored, device=device) if device else stored
        model = RSSMWorldModel.from_pretrained(str(local), config=config, map_location=str(config.torch_device))
    else:
        model = RSSMWorldModel.from_pretrained(str(path))
        if expect is not None and model.config.mismatch(expect):
            raise ValueError(f"world-model checkpoint {path} was trained for a different world: "
                             f"{'; '.join(model.config.mismatch(expect))} (checkpoint vs expected)")
    return model.eval()
