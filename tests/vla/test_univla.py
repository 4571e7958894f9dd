"""UniVLA: the latent action model and latent policy train on action-free Crafter episodes, only the action
decoder reads labels; checkpoints round-trip through the registry and run as --skills."""

import json

import numpy as np
import pytest
import torch

from tools.envs.crafter import CrafterEnv
from vla.base import CheckpointError
from vla.registry import entry, load_policy
from vla.train import TrainConfig, train
from vla.univla import UniVLAConfig, UniVLAPolicy
from vla.univla.data import MissingLabelsError, labelled_rows, read_rows, stage_frames
from vla.univla.rollouts import collect_random

#: The smallest UniVLA the tests build (trains and acts in milliseconds).
TINY = {"lam_dim": 32, "lam_layers": 1, "d_model": 32, "n_layers": 1, "n_heads": 2, "code_dim": 8,
        "decoder_dim": 32, "restart_every": 5}


@pytest.fixture(scope="module")
def random_dataset(tmp_path_factory):
    """Random-policy Crafter episodes whose actions are removed (every row NO_ACTION)."""
    root = tmp_path_factory.mktemp("random")
    collect_random(root, worlds=2, steps=40)
    return root


def trained_stage(stage: str, data, steps: int = 30, **fields) -> tuple[UniVLAPolicy, object]:
    cfg = TrainConfig(data=str(data), policy=UniVLAConfig(stage=stage, **TINY, **fields))
    frames = stage_frames(cfg)
    torch.manual_seed(0)
    policy = UniVLAPolicy(cfg.policy).train()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    for step in range(steps):
        index = torch.randperm(len(frames), generator=torch.Generator().manual_seed(step))[:32]
        loss, _ = policy(frames[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy, frames


def test_lam_trains_on_action_free_rows_and_uses_its_codes(random_dataset):
    policy, frames = trained_stage("lam1", random_dataset, steps=40)
    assert (frames.action == 0).all()  # no labels read: placeholders only
    before = UniVLAPolicy(UniVLAConfig(stage="lam1", **TINY)).validate(frames)
    after = policy.validate(frames)
    assert after["recon_mse"] < before["recon_mse"]
    assert after["codes_used_1"] >= 3, after  # no collapse to one code on real frames
    # stage 2: codebook 1 frozen (unchanged by training), a second codebook learnt and used
    stage2 = UniVLAPolicy(UniVLAConfig(stage="lam2", **TINY))
    stage2.load_state_dict(policy.state_dict())
    frozen = stage2.lam.vq1.codebook.weight.clone()
    optimizer = torch.optim.AdamW([p for p in stage2.parameters() if p.requires_grad], lr=3e-3)
    stage2.train()
    for step in range(20):
        loss, _ = stage2(frames[torch.arange(32) + step])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(stage2.lam.vq1.codebook.weight, frozen)
    assert stage2.validate(frames)["codes_used_2"] >= 2


def test_action_decoder_refuses_unlabelled_data(random_dataset):
    cfg = TrainConfig(data=str(random_dataset), policy=UniVLAConfig(stage="decoder", **TINY))
    with pytest.raises(MissingLabelsError, match="action decoder stage needs them"):
        stage_frames(cfg)
    for stage in ("lam1", "lam2", "policy"):  # the unlabelled stages take the same data
        assert len(stage_frames(TrainConfig(data=str(random_dataset), policy=UniVLAConfig(stage=stage, **TINY))))


def test_decoder_reads_only_the_labelled_fraction(tiny_dataset):
    cfg = TrainConfig(data=str(tiny_dataset), policy=UniVLAConfig(stage="decoder", label_fraction=0.5, **TINY))
    episodes = read_rows(tiny_dataset, labels=False)["episode"]
    assert 0 < len(stage_frames(cfg)) == labelled_rows(episodes, 0.5) <= 0.5 * len(episodes)
    episodes = np.repeat([0, 1, 2], [3, 5, 2])
    assert labelled_rows(episodes, 0.5) == 3 and labelled_rows(episodes, 0.8) == 8 and labelled_rows(episodes, 0.1) == 3


def test_save_load_round_trip_through_the_registry(tmp_path):
    assert entry("univla").policy_class() is UniVLAPolicy
    torch.manual_seed(0)
    policy = UniVLAPolicy(UniVLAConfig(stage="decoder", **TINY)).eval()
    policy.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["policy_type"] == "univla"
    loaded = load_policy(tmp_path)
    assert isinstance(loaded, UniVLAPolicy) and loaded.config == policy.config
    obs, _ = CrafterEnv(seed=0).reset(seed=0)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert torch.equal(loaded.action_logits(batch, ["collect wood"] * 2),
                       policy.action_logits(batch, ["collect wood"] * 2))
    assert 0 <= loaded.act(obs, "collect wood") < 17
    shipped = load_policy("univla")  # the shipped checkpoint: --skills univla
    assert isinstance(shipped, UniVLAPolicy) and shipped.config.stage == "decoder"
    assert 0 <= shipped.act(obs, "collect wood") < 17


def test_lam_checkpoint_with_another_codebook_or_frame_size_names_both(tmp_path):
    UniVLAPolicy(UniVLAConfig(**{**TINY, "num_codes": 8})).save_pretrained(tmp_path / "codes8")
    with pytest.raises(CheckpointError, match=r"codebook 8 codes .* needs .*codebook 16 codes"):
        UniVLAPolicy(UniVLAConfig(stage="policy", **TINY)).load_weights(tmp_path / "codes8" / "model.safetensors")
    UniVLAPolicy(UniVLAConfig(image_shape=(32, 32, 3), **TINY)).save_pretrained(tmp_path / "small")
    with pytest.raises(CheckpointError, match=r"frames 32x32.* needs frames 64x64"):
        UniVLAPolicy(UniVLAConfig(stage="policy", **TINY)).load_weights(tmp_path / "small" / "model.safetensors")


def test_all_stages_through_the_trainer_then_a_real_episode_with_skills(tiny_dataset, random_dataset, tmp_path):
    from typer.testing import CliRunner

    from embodia.cli import app

    out = tmp_path / "univla"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), steps=2, batch_size=4, warmup_steps=1, val_every=3,
                      eval_seeds=(), policy=UniVLAConfig(**TINY, unlabelled_data=(str(random_dataset),),
                                                         label_fraction=0.5))
    metrics = train(cfg)
    assert list(metrics["stages"]) == ["lam1", "lam2", "policy", "decoder"]
    assert json.loads((out / "config.json").read_text())["stage"] == "decoder"
    run = CliRunner().invoke(app, ["run", "collect wood", "--llm", "none", "--skills", str(out), "--max-steps", "3",
                                   "--no-video", "--out", str(tmp_path / "run")])
    assert run.exit_code in (0, 1), run.output  # the barely trained policy may well fail; it ran
    assert (tmp_path / "run" / "episode.jsonl").is_file()
    # the CLI: a latent action model of another size is refused naming both (exit 2) ...
    flags = ["train", "vla", "--policy", "univla", "--data", str(random_dataset), "--out", str(tmp_path / "refused"),
             "--steps", "1", "--batch-size", "4", "--eval-seeds", ""]
    mismatch = CliRunner().invoke(app, [*flags, "--lam-checkpoint", str(out)])
    assert mismatch.exit_code == 2 and "lam_dim=32" in " ".join(mismatch.output.split()), mismatch.output
    # ... and an action-free dataset reaches the decoder stage (latent action model reused) and exits 2
    UniVLAPolicy(UniVLAConfig()).save_pretrained(tmp_path / "lam")
    refused = CliRunner().invoke(app, [*flags, "--lam-checkpoint", str(tmp_path / "lam")])
    assert refused.exit_code == 2 and "action decoder stage needs them" in " ".join(refused.output.split())
