"""tools.models.hub: local checkpoints load silently and exactly (the shipped policy and world model)."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from vla.registry import checkpoint_of, load_policy
from world_models import SHIPPED_CHECKPOINT
from world_models.rssm import load_world_model


def test_local_loads_print_nothing_and_restore_every_weight(capsys):
    policy = load_policy("learned")
    world_model = load_world_model(SHIPPED_CHECKPOINT)
    assert capsys.readouterr().out == ""  # huggingface_hub's mixin prints a line per local load
    for model, folder in ((policy, checkpoint_of("learned")), (world_model, SHIPPED_CHECKPOINT)):
        stored = load_file(folder / "model.safetensors")
        state = model.state_dict()
        assert stored and all(torch.equal(state[name], tensor) for name, tensor in stored.items())


def test_a_bare_from_pretrained_builds_the_world_model_from_its_config_json():
    """The path a Hub id takes: no config passed in, huggingface_hub reads config.json itself."""
    from world_models.rssm import RSSMWorldModel

    bare = RSSMWorldModel.from_pretrained(str(SHIPPED_CHECKPOINT))
    loaded = load_world_model(SHIPPED_CHECKPOINT)
    assert bare.config == loaded.config
    assert all(torch.equal(a, b) for a, b in zip(bare.state_dict().values(), loaded.state_dict().values(), strict=True))
