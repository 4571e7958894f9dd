"""Shared by the VLA tests: a tiny real dataset (one Crafter world, a short skill chain) and a tiny checkpoint."""

import pytest
import torch

from tests.vla.training import TINY
from tools.collect_crafter import run_chain
from tools.episode_dataset import write_shard
from vla.hybrid import HybridConfig, HybridVLAPolicy

SHORT_CHAIN = ("collect wood", "collect wood", "collect wood", "place table", "make wood_pickaxe", "collect stone")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-skills")
    episodes, _ = run_chain(0, SHORT_CHAIN)
    write_shard(root / "data" / "seed-000000.parquet", episodes, first_episode_index=0)
    return root


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny untrained HybridVLA saved to a folder (seeded, so its weights are the same every run)."""
    torch.manual_seed(0)
    HybridVLAPolicy(HybridConfig(**TINY)).save_pretrained(tmp_path)
    return tmp_path
