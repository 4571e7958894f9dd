"""The trainer runs on real collected data, checkpoints atomically and resumes where it stopped."""

import json

from vla.hybrid import HybridConfig, HybridVLAPolicy
from vla.train import CHECKPOINT_DIR, STATE_FILE, TrainConfig, train

TINY = HybridConfig(d_model=32, n_layers=1, n_heads=2)


def test_train_checkpoints_and_resumes(tiny_dataset, tmp_path):
    def config(steps: int, resume: bool) -> TrainConfig:
        return TrainConfig(data=str(tiny_dataset), out=str(tmp_path), policy=TINY, steps=steps, batch_size=8,
                           checkpoint_every=2, val_every=5, eval_seeds=(), resume=resume)

    metrics = train(config(steps=3, resume=False))
    state = json.loads((tmp_path / CHECKPOINT_DIR / STATE_FILE).read_text())
    assert state["step"] == 3 and metrics["validation"]["loss"] > 0
    assert not (tmp_path / f"{CHECKPOINT_DIR}.tmp").exists()
    train(config(steps=5, resume=True))
    state = json.loads((tmp_path / CHECKPOINT_DIR / STATE_FILE).read_text())
    assert (state["step"], state["samples"]) == (5, 5 * 8)
    assert HybridVLAPolicy.from_pretrained(tmp_path).config == TINY
