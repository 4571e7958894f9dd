"""Shared by the world-model training tests: the micro model size and a tiny collected dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from world_models.data import CollectConfig, collect

#: The "micro" preset's overrides of "tiny": a model that trains a few steps in seconds.
MICRO = {"deter": 32, "stoch": 4, "classes": 4, "hidden": 16, "blocks": 2, "depth": 4, "seq_len": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 40-step episodes collected once per test module."""
    folder = tmp_path_factory.mktemp("wm-data")
    collect(CollectConfig(out=folder, episodes=2, steps=40))
    return folder
