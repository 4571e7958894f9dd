"""Fixtures of the agent tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chat import ChatSession


@pytest.fixture
def session(tmp_path: Path):
    """A chat session on world 3 with no LLM and no video."""
    chat = ChatSession(None, seed=3, out_dir=tmp_path / "chat", video=False)
    yield chat
    chat.close()
