"""HybridVLA seeing through the tile encoder (``vision="tiles"``): the VLM's trained encoder is copied in and
stays frozen, the policy still learns on real rows, the checkpoint stands alone, and bad settings fail clearly."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from embodia.cli import app
from tests.vla.training import TINY, loss_before_and_after
from tools.models.tile_encoder import VisionEncoder
from vla.base import WEIGHTS_FILE, CheckpointError
from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.registry import load_policy
from vla.train import TrainConfig, train

VLM_ENCODER = Path(__file__).resolve().parents[2] / "agents" / "adapters" / "embodia-vlm" / "encoder"
TILES = HybridConfig(**TINY, vision="tiles")


def test_tiles_give_one_token_per_view_tile():
    assert TILES.num_patches == 63 and TILES.prefix_len == TILES.instruction_len + 63 + 1


def test_tiles_need_crafter_frames():
    with pytest.raises(ValueError, match="64x64x3 frames"):
        HybridConfig(vision="tiles", image_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="vision must be one of"):
        HybridConfig(vision="pixels")


def test_tiles_policy_learns_on_real_rows(tiny_dataset):
    before, after = loss_before_and_after(TILES, tiny_dataset)
    assert after < 0.7 * before


def test_training_copies_the_vlm_encoder_and_keeps_it_frozen(tiny_dataset, tmp_path):
    cfg = TrainConfig(data=str(tiny_dataset), out=str(tmp_path), policy=TILES, steps=4, batch_size=8, val_every=5,
                      eval_seeds=(), vision_init=str(VLM_ENCODER))
    train(cfg)
    trained = VisionEncoder.from_pretrained(VLM_ENCODER).state_dict()
    saved = load_file(tmp_path / WEIGHTS_FILE)
    for key, value in trained.items():
        assert torch.equal(saved[f"vision_encoder.{key}"], value), key  # copied, and unchanged by 4 steps
    policy = load_policy(str(tmp_path))  # the checkpoint alone rebuilds it (no path to the VLM in it)
    assert policy.config.vision == "tiles" and isinstance(policy, HybridVLAPolicy)
    frame = np.asarray(torch.randint(0, 255, (64, 64, 3), generator=torch.Generator().manual_seed(0)), np.uint8)
    action = policy.act({"image": frame, "state": np.zeros(policy.config.state_dim, np.float32)}, "collect wood")
    assert 0 <= int(action) < policy.config.num_actions


def test_freeze_vision_decides_what_trains():
    policy = HybridVLAPolicy(HybridConfig(**TINY, vision="tiles", freeze_vision=False))
    assert all(p.requires_grad for p in policy.vision_encoder.parameters())
    frozen = HybridVLAPolicy(TILES)
    assert not any(p.requires_grad for p in frozen.vision_encoder.parameters())


def test_vision_init_needs_tiles_and_a_real_encoder(tmp_path):
    with pytest.raises(ValueError, match="vision_init needs a policy with vision='tiles'"):
        TrainConfig(policy=HybridConfig(**TINY), vision_init=str(VLM_ENCODER))
    policy = HybridVLAPolicy(TILES)
    with pytest.raises(FileNotFoundError, match="no tile encoder at"):
        policy.load_vision_encoder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot load the tile encoder"):
        policy.load_vision_encoder(tmp_path)


def test_cli_trains_a_tiles_policy(tiny_dataset, tmp_path):
    args = ["train", "vla", "--data", str(tiny_dataset), "--out", str(tmp_path), "--steps", "2", "--batch-size", "8",
            "--d-model", "32", "--n-layers", "1", "--eval-seeds", "", "--vision", "tiles",
            "--vision-init", str(VLM_ENCODER)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert HybridVLAPolicy.from_pretrained(tmp_path).config.vision == "tiles"
    bad = CliRunner().invoke(app, [*args[:-4], "--vision", "tiles", "--vision-init", str(tmp_path / "missing")])
    assert bad.exit_code == 2, bad.output
    patches = CliRunner().invoke(app, [*args[:-4], "--vision-init", str(VLM_ENCODER)])  # no --vision tiles
    assert patches.exit_code == 2 and "vision='tiles'" in patches.output, patches.output
