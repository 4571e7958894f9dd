"""A tiny real dataset (one Crafter world, a short skill chain) shared by the VLA tests."""

import pytest

from tools.collect_crafter import run_chain
from tools.episode_dataset import write_shard

SHORT_CHAIN = ("collect wood", "collect wood", "collect wood", "place table", "make wood_pickaxe", "collect stone")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-skills")
    episodes, _ = run_chain(0, SHORT_CHAIN)
    write_shard(root / "data" / "seed-000000.parquet", episodes, first_episode_index=0)
    return root
