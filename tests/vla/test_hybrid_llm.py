"""HybridVLA on the embedded SmolLM2 with LoRA: it learns from real Crafter rows, honours the segment mask,
saves only the LoRA/new weights and refuses a checkpoint made for another base model.

Two decoder layers of the real model keep these fast (the layers are SmolLM2's own, LoRA and all).
"""

import json

import pytest
import torch
from typer.testing import CliRunner

from embodia.cli import app
from tools.train_state import read_state
from vla.base import WEIGHTS_FILE, CheckpointError
from vla.data import load_frames
from vla.hybrid import HybridConfig, HybridVLAPolicy

LLM = {"backbone": "smollm2", "llm_layers": 2}


@pytest.fixture(scope="module")
def rows(tiny_dataset):
    frames = load_frames(tiny_dataset, 1, HybridConfig().max_instruction_len)
    return frames, frames[slice(0, 16)]


def fixed_noise_loss(policy: HybridVLAPolicy, batch: dict[str, torch.Tensor]) -> float:
    policy.eval()
    torch.manual_seed(123)  # the same diffusion noise and timesteps for every evaluation
    with torch.no_grad():
        return policy(batch)[0].item()


@pytest.fixture(scope="module")
def trained(rows):
    _, batch = rows
    torch.manual_seed(0)
    policy = HybridVLAPolicy(HybridConfig(**LLM))
    before = fixed_noise_loss(policy, batch)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(8):
        policy.train()
        loss, _ = policy(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return policy, before, fixed_noise_loss(policy, batch)


def test_lora_steps_lower_the_loss_and_train_only_lora_and_new_weights(trained):
    policy, before, after = trained
    assert after < before
    trainable = {name for name, p in policy.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable)
    assert all("lora_" in name for name in trainable if name.startswith("llm."))  # the base stays frozen
    assert {"image_stem.0.weight", "ar_head.weight", "diffusion_head.weight"} <= trainable


def test_save_load_round_trip_is_lora_only_and_gives_identical_actions(trained, rows, tmp_path):
    policy, _, _ = trained
    frames, _ = rows
    policy.eval().save_pretrained(tmp_path)
    saved = (tmp_path / WEIGHTS_FILE).stat().st_size
    assert saved < 10_000_000  # the base model's fp32 weights alone are ~540 MB
    loaded = HybridVLAPolicy.from_pretrained(tmp_path)
    obs = {"image": frames.image[:6].numpy(), "state": frames.state[:6].numpy()}
    policy.reset()
    loaded.reset()
    expected = policy.predict_probs(obs, frames.texts[:6])
    got = loaded.predict_probs(obs, frames.texts[:6])
    for head in ("ar", "diffusion", "ensemble"):
        assert torch.equal(expected[head], got[head]), head


def test_segment_mask_is_honoured_inside_the_llm(trained, rows):
    policy, _, _ = trained
    policy.eval()
    _, batch = rows
    cfg = policy.config
    sp, h = cfg.prefix_len, cfg.chunk_size
    diffusion, ar = slice(sp, sp + 1 + h), slice(sp + 1 + h, None)
    with torch.no_grad():
        prefix = policy._embed_prefix(batch)
        torch.manual_seed(1)
        suffix = torch.randn(len(prefix), cfg.ar_len + 1 + h, prefix.shape[-1])
        positions = torch.arange(sp + suffix.shape[1])

        def run(tokens: torch.Tensor) -> torch.Tensor:
            return policy._run(tokens, positions, None)[0]

        base = run(torch.cat([prefix, suffix], 1))
        noisy = suffix.clone()
        noisy[:, : 1 + h] = torch.randn_like(noisy[:, : 1 + h])  # other timestep + noisy action tokens
        changed = run(torch.cat([prefix, noisy], 1))
        other_prefix = run(torch.cat([prefix + torch.randn_like(prefix), suffix], 1))
    torch.testing.assert_close(changed[:, ar], base[:, ar], rtol=0, atol=1e-5)  # AR never sees the noisy tokens
    torch.testing.assert_close(changed[:, :sp], base[:, :sp], rtol=0, atol=1e-5)  # nor does the prefix
    assert not torch.allclose(changed[:, diffusion], base[:, diffusion], atol=1e-3)
    assert not torch.allclose(other_prefix[:, ar], base[:, ar], atol=1e-3)  # AR does read the prefix


def test_the_prefix_cache_gives_the_full_pass_outputs(trained):
    policy, _, _ = trained
    policy.eval()
    sp = policy.config.prefix_len
    torch.manual_seed(2)
    x = torch.randn(3, sp + 1 + policy.config.chunk_size + policy.config.ar_len, policy.d_model)
    positions = torch.arange(x.shape[1])
    with torch.no_grad():
        full, _ = policy._run(x, positions, None)
        _, cache = policy._run(x[:, : sp + 2], positions[: sp + 2], None)  # prefix + 2 diffusion tokens
        ar, cache = policy._run(x[:, sp + 2 :], positions[sp + 2 :], cache)  # later passes reuse the prefix
        again, cache = policy._run(x[:, sp : sp + 2], positions[sp : sp + 2], cache)
    assert cache.get_seq_length() == sp
    torch.testing.assert_close(ar, full[:, sp + 2 :], rtol=0, atol=1e-4)
    torch.testing.assert_close(again, full[:, sp : sp + 2], rtol=0, atol=1e-4)


def test_a_checkpoint_for_another_base_model_is_refused_naming_both(trained, tmp_path):
    policy, _, _ = trained
    policy.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["llm_fingerprint"].update(model_type="qwen2", hidden_size=896, num_hidden_layers=24)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"qwen2.*SmolLM2"):
        HybridVLAPolicy.from_pretrained(tmp_path)


def test_finetune_vla_cli_checkpoints_and_resumes(tiny_dataset, tmp_path):
    args = ["finetune", "vla", "--data", str(tiny_dataset), "--out", str(tmp_path), "--batch-size", "4",
            "--llm-layers", "2", "--max-rows", "40", "--val-every", "3", "--checkpoint-every", "1",
            "--speed-actions", "2"]
    first = CliRunner().invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, [*args, "--steps", "3", "--resume"])
    assert second.exit_code == 0, second.output
    state = read_state(tmp_path / "checkpoint")  # the trainer's checkpoint layout is tools.train_state's
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert state is not None and (state["step"], state["extra"]["samples"]) == (3, 12)
    assert metrics["actions_per_s_batch1"] > 0 and metrics["validation"]["loss"] > 0
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 10_000_000
