"""Shared fixtures: the embedded planner is converted once per machine and loaded once per session."""

import pytest


@pytest.fixture(scope="session")
def embedded_model_dir():
    """Path of the cached safetensors copy of the embedded SmolLM2 (converted on first use, ~30 s)."""
    from tools.models.smollm2 import embedded_model_dir as locate

    return locate()


@pytest.fixture
def one_torch_thread():
    """Small batched torch work: one thread avoids OpenMP oversubscription on a busy 2-core machine (30x here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
