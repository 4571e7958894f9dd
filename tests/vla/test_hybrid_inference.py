"""HybridVLA's fast inference path computes exactly what the training-time sequence computes.

Inference interleaves DDIM steps and AR tokens in shared passes against a cached prefix and does
the DDIM arithmetic itself; both shortcuts are checked here against the plain full-sequence pass
(the training mask) and against diffusers' ``DDIMScheduler.step``.
"""

import pytest
import torch
from diffusers import DDIMScheduler

from tools.envs.crafter import CrafterEnv
from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.hybrid.modeling_hybrid import ddim_steps
from vla.hybrid.processor_hybrid import preprocess


def full_sequence(policy: HybridVLAPolicy, batch: dict, noisy: torch.Tensor, t: int,
                  ar_actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion x0 and AR probabilities of one training-style pass over the whole sequence."""
    cfg, B = policy.config, noisy.shape[0]
    bos = torch.full((B, 1), cfg.num_actions, dtype=torch.long)
    ar_in = policy.ar_embed(torch.cat([bos, ar_actions[:, :-1]], 1))
    suffix = torch.cat([policy._diffusion_tokens(noisy, torch.full((B,), t)), ar_in], 1)
    x = torch.cat([policy._embed_prefix(batch), suffix + policy.position[:, cfg.prefix_len:]], 1)
    for block in policy.blocks:
        x, _ = block(x, policy.mask)
    x, sp, H = policy.norm(x), cfg.prefix_len, cfg.chunk_size
    return policy.diffusion_head(x[:, sp + 1 : sp + 1 + H]), policy.ar_head(x[:, sp + 1 + H :]).softmax(-1)


@pytest.mark.parametrize("chunk_size", [1, 3])
@torch.no_grad()
def test_interleaved_passes_equal_the_full_sequence(chunk_size):
    torch.manual_seed(0)
    config = HybridConfig(d_model=32, n_layers=2, n_heads=2, dropout=0.0, chunk_size=chunk_size,
                          num_inference_steps=1)
    policy = HybridVLAPolicy(config).eval()
    obs = CrafterEnv(seed=0).reset(seed=0)[0]
    obs = {k: v[None].repeat(2, 0) for k, v in obs.items()}
    instructions = ["collect wood", "place table"]
    policy.reset()
    probs = policy.predict_probs(obs, instructions)
    policy.reset()
    noise = torch.randn((2, chunk_size, config.num_actions), generator=policy._generator)  # what inference drew
    (step,) = ddim_steps(policy.infer_scheduler, 1)
    x0_hat, ar = full_sequence(policy, preprocess(config, obs, instructions), noise, step.t, probs["ar"].argmax(-1))
    torch.testing.assert_close(probs["ar"], ar)
    torch.testing.assert_close(probs["diffusion"], step(x0_hat, noise).softmax(-1))


@pytest.mark.parametrize("num_steps", [1, 2, 4, 10])
def test_ddim_steps_match_the_diffusers_scheduler(num_steps):
    config = {"num_train_timesteps": 100, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample",
              "clip_sample": True}
    scheduler = DDIMScheduler(**config)
    scheduler.set_timesteps(num_steps)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 17, generator=generator)
    for step in ddim_steps(DDIMScheduler(**config), num_steps):
        x0_hat = 1.5 * torch.randn(4, 2, 17, generator=generator)  # some beyond the clip range
        expected = scheduler.step(x0_hat, step.t, x).prev_sample
        torch.testing.assert_close(step(x0_hat, x), expected)
        x = expected


@torch.no_grad()
def test_action_temperature_samples_reproducibly_and_zero_is_argmax():
    torch.manual_seed(0)
    greedy = HybridVLAPolicy(HybridConfig(d_model=32, n_layers=1, n_heads=2)).eval()
    sampling = HybridVLAPolicy(HybridConfig(d_model=32, n_layers=1, n_heads=2, action_temperature=1.0)).eval()
    sampling.load_state_dict(greedy.state_dict())
    obs = CrafterEnv(seed=0).reset(seed=0)[0]
    batch = {k: v[None].repeat(64, 0) for k, v in obs.items()}  # one state, 64 draws
    texts = ["collect wood"] * 64
    greedy.reset()
    argmax = greedy.predict_probs(batch, texts)["ensemble"].argmax(-1)
    greedy.reset()
    assert torch.equal(greedy.predict_action_chunk(batch, texts), argmax)
    sampling.reset()
    first = sampling.predict_action_chunk(batch, texts)
    sampling.reset()
    assert torch.equal(sampling.predict_action_chunk(batch, texts), first)  # reset reseeds: reproducible
    assert len(first.unique()) > 1  # an untrained policy's flat probabilities: the draws differ
    with pytest.raises(ValueError, match="action_temperature must be >= 0"):
        HybridConfig(action_temperature=-1.0)
