"""Shared by the chat tests: the text replies of a real session (its fixture is in ``conftest.py``)."""

from __future__ import annotations

from agents.chat import ChatReply, ChatSession


def replies(session: ChatSession, line: str) -> list[str]:
    """The text of every reply ``session`` gives to ``line``."""
    return [item.text for item in session.handle(line) if isinstance(item, ChatReply)]
