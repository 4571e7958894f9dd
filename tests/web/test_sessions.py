"""The web sessions without a browser: a real chat session on its worker thread, interrupt mid-skill, the pool's
bounds and reaping, and imagination's frame for the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chat import ChatReply
from agents.rafa import RafaConfig
from agents.steps import ActionStep, FinalStep, PlanningStep
from embodia.web.sessions import INTERRUPTED, ServeConfig, SessionPool, SessionsFull, WebSession


def config(tmp_path: Path, **fields: object) -> ServeConfig:
    return ServeConfig(root=tmp_path, video=False, **fields)


def test_a_line_streams_steps_and_interrupt_keeps_the_world(tmp_path: Path) -> None:
    session = WebSession("k" * 16, None, RafaConfig(), config(tmp_path))
    items = [i for i in session.run("collect wood") if i is not None]
    assert isinstance(items[0], PlanningStep) and any(isinstance(i, ActionStep) for i in items)
    assert isinstance(items[-2], FinalStep) and items[-2].success
    steps_before = session.chat.env.unwrapped.steps
    seen: list[object] = []
    for item in session.run("make an iron pickaxe"):
        seen.append(item)
        if isinstance(item, ActionStep):
            session.interrupt.set()  # as the Interrupt button does
    assert isinstance(seen[-1], ChatReply) and seen[-1].text == INTERRUPTED
    assert not any(isinstance(i, FinalStep) for i in seen)
    assert session.chat.env.unwrapped.steps > steps_before and session.chat.env.unwrapped.inventory["wood"] >= 1
    # renders during a line are time-based (at most --fps a second), so an idle machine may finish both lines
    # inside one period; between lines the page's request renders the world as it is now
    assert session.live is not None and session.frame().shape == (256, 256, 3) and session.live.frames > 0
    session.close()


def test_a_second_line_while_one_runs_is_refused(tmp_path: Path) -> None:
    session = WebSession("b" * 16, None, RafaConfig(), config(tmp_path))
    running = session.run("make an iron pickaxe")
    next(i for i in running if i is not None)  # the first line is on its worker now
    replies = [i.text for i in session.run("collect wood") if isinstance(i, ChatReply)]
    assert replies == ["still working on the previous line: press Interrupt, or wait for it to end"]
    running.close()  # the page went away: the worker stops at its next env step
    with session.busy:
        pass
    session.close()


def test_pool_is_bounded_and_reaps_idle_sessions(tmp_path: Path) -> None:
    made: list[str] = []

    def make(key: str) -> WebSession:
        made.append(key)
        return WebSession(key, None, RafaConfig(), config(tmp_path, max_sessions=1, idle_seconds=60))

    pool = SessionPool(make, config(tmp_path, max_sessions=1, idle_seconds=60))
    first = pool.get("first-tab")
    assert pool.get("first-tab") is first
    with pytest.raises(SessionsFull, match="the server is full"):
        pool.get("second-tab")
    assert pool.reap(now=first.last_seen + 30) == []
    assert pool.reap(now=first.last_seen + 61) == ["first-tab"]
    assert pool.get("second-tab") is not first and made == ["first-tab", "second-tab"]
    pool.close()
    assert not pool.sessions


def test_imagination_gives_the_page_an_imagined_frame(tmp_path: Path) -> None:
    session = WebSession("i" * 16, None, RafaConfig(imagination=True), config(tmp_path))
    items = [i for i in session.run("collect wood") if i is not None]
    assert any(isinstance(i, ActionStep) and i.imagined is not None for i in items)
    last = session.chat.agent.imagination.last
    assert last is not None and last.frames.shape[1:] == (64, 64, 3)
    session.close()
