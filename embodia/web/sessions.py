"""Browser sessions of ``embodia serve``: one :class:`~agents.chat.ChatSession` each, bounded and reaped.

A line runs on a worker thread through ``ChatSession.handle`` -- the terminal chat's own code path, so the
web gets the same understanding, bounds and refusals and only registered tools ever run. The page drains
the worker's queue as steps arrive. Interrupt raises :class:`Interrupted` (a ``KeyboardInterrupt``, what
Ctrl-C raises in the terminal chat) inside the agent's next env step: the world and memory stay.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.chat import ChatReply, ChatSession
from agents.llm.base import LLM, Messages
from agents.rafa import RafaConfig
from agents.steps import Step

INTERRUPTED = "interrupted — the world and memory are kept; type another goal"


class Interrupted(KeyboardInterrupt):
    """The user pressed Interrupt: raised in the agent's env step, as Ctrl-C is in the terminal chat."""


class LiveEnv(gym.Wrapper):
    """Around the agent's env: keeps the latest frame for the page (at most ``fps`` renders a second) and
    raises :class:`Interrupted` at the next step once ``interrupt`` is set."""

    def __init__(self, env: gym.Env, interrupt: threading.Event, fps: float) -> None:
        super().__init__(env)
        self.interrupt = interrupt
        self.period = 1.0 / fps if fps > 0 else float("inf")
        self.frame: np.ndarray = env.render()
        self.frames = 0  # renders so far: the page shows a frame only when this moved
        self._rendered_at = time.perf_counter()

    def step(self, action: Any):
        if self.interrupt.is_set():
            raise Interrupted
        result = self.env.step(action)
        if time.perf_counter() - self._rendered_at >= self.period:
            self.refresh()
        return result

    def refresh(self) -> None:
        """Render the current frame (on the thread that steps the env: a render never sees half a step)."""
        self.frame = self.env.render()
        self.frames += 1
        self._rendered_at = time.perf_counter()


class SharedLLM(LLM):
    """One loaded planner for every session: calls are serialised (backends are not thread-safe)."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self._lock = threading.Lock()

    @property
    def usage(self):  # type: ignore[override]
        return self.inner.usage

    def generate(self, messages: Messages, **kwargs: Any) -> str:
        with self._lock:
            return self.inner.generate(messages, **kwargs)

    def score(self, prompt: str | Messages, options: list[str]) -> list[float]:
        with self._lock:
            return self.inner.score(prompt, options)

    def __getattr__(self, name: str) -> Any:  # tokenizer, model, …: the planner's optional extras
        return getattr(self.inner, name)


@dataclass
class ServeConfig:
    """How ``embodia serve`` runs its sessions.

    Args:
        root: folder of the session folders (log, video, saves).
        seed: world seed of a new session.
        max_sessions: sessions alive at once; one more is told the server is full.
        idle_seconds: a session nobody used for this long is closed (its folder stays).
        fps: most frames a second rendered for the page during an episode.
        video: write each session's video.mp4.
    """

    root: Path
    seed: int = 0
    max_sessions: int = 4
    idle_seconds: float = 900.0
    fps: float = 10.0
    video: bool = True

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.idle_seconds <= 0 or self.fps <= 0:
            raise ValueError(f"ServeConfig: max_sessions >= 1, idle_seconds > 0 and fps > 0 ({self})")


class WebSession:
    """One browser tab's world, agent and memory, and the worker that runs its lines one at a time."""

    def __init__(self, key: str, llm: LLM | None, agent_config: RafaConfig, config: ServeConfig,
                 resume: Path | None = None, generation: int = 1) -> None:
        self.key, self.llm, self.agent_config, self.config = key, llm, agent_config, config
        self.interrupt = threading.Event()
        self.busy = threading.Lock()
        self.last_seen = time.monotonic()
        self.live: LiveEnv | None = None
        self.generation = generation
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out_dir = config.root / f"{stamp}-web-{key[:8]}-{generation}"
        self.chat = ChatSession(llm, seed=config.seed, out_dir=self.out_dir, config=agent_config,
                                video=config.video, resume=resume, wrap_env=self._wrap)

    def _wrap(self, env: gym.Env) -> gym.Env:
        self.live = LiveEnv(env, self.interrupt, self.config.fps)
        return self.live

    def frame(self) -> np.ndarray:
        """The frame to show: the latest rendered one while a line runs, the world now otherwise."""
        assert self.live is not None
        if not self.busy.locked():
            self.live.refresh()
        return self.live.frame

    def run(self, line: str, tick: float = 0.05) -> Iterator[Step | ChatReply | None]:
        """Yield the steps and replies of ``line`` as the worker produces them, and ``None`` every ``tick``
        seconds in between (the page's chance to show a new frame). A second line while one runs is refused."""
        self.last_seen = time.monotonic()
        if not self.busy.acquire(blocking=False):
            yield ChatReply("still working on the previous line: press Interrupt, or wait for it to end")
            return
        self.interrupt.clear()
        items: queue.Queue[Any] = queue.Queue()
        done = object()

        def work() -> None:
            try:
                for item in self.chat.handle(line):
                    items.put(item)
            except Interrupted:
                items.put(ChatReply(INTERRUPTED))
            except Exception as exc:  # one bad line never ends the session (as in the terminal chat)
                items.put(ChatReply(f"that line failed: {type(exc).__name__}: {str(exc)[:500]} — the world and "
                                    "memory are kept; Save still works"))
            finally:
                self.busy.release()
                items.put(done)

        worker = threading.Thread(target=work, name=f"embodia-web-{self.key[:8]}", daemon=True)
        try:
            worker.start()
            while True:
                try:
                    item = items.get(timeout=tick)
                except queue.Empty:
                    yield None
                    continue
                if item is done:
                    return
                yield item
        finally:  # the page went away mid-line: stop the agent at its next step, keep the world
            if worker.is_alive():
                self.interrupt.set()
            self.last_seen = time.monotonic()

    def close(self) -> None:
        self.interrupt.set()
        with self.busy:  # the worker ends at its next env step
            self.chat.close()


class SessionsFull(RuntimeError):
    """Every session slot is taken."""


class SessionPool:
    """At most ``config.max_sessions`` live sessions keyed by browser session; idle ones are closed."""

    def __init__(self, make: Callable[[str], WebSession], config: ServeConfig) -> None:
        self.make, self.config = make, config
        self.sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def get(self, key: str) -> WebSession:
        """The session of ``key``, made on first use; :class:`SessionsFull` when every slot is taken."""
        with self._lock:
            found = self.sessions.get(key)
            if found is None:
                if len(self.sessions) >= self.config.max_sessions:
                    raise SessionsFull(f"the server is full ({self.config.max_sessions} sessions in use); try again "
                                       f"later — an idle session is freed after {self.config.idle_seconds:.0f} s")
                found = self.sessions[key] = self.make(key)
            found.last_seen = time.monotonic()
            return found

    def replace(self, key: str, session: WebSession) -> None:
        """Put ``session`` in ``key``'s slot (a loaded save), closing the one it replaces."""
        with self._lock:
            old = self.sessions.get(key)
            self.sessions[key] = session
        if old is not None:
            old.close()

    def free(self, key: str) -> bool:
        """Close ``key``'s session (its tab closed); False when it had none."""
        with self._lock:
            session = self.sessions.pop(key, None)
        if session is not None:
            session.close()
        return session is not None

    def reap(self, now: float | None = None) -> list[str]:
        """Close the sessions idle longer than ``idle_seconds`` and not running a line; their keys."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [k for k, s in self.sessions.items()
                    if now - s.last_seen > self.config.idle_seconds and not s.busy.locked()]
        for key in idle:
            self.free(key)
        return idle

    def start_reaper(self) -> threading.Thread:
        """Reap on a daemon thread every quarter of ``idle_seconds`` (at most every 30 s)."""
        period = min(30.0, self.config.idle_seconds / 4)

        def loop() -> None:
            while not self._stop.wait(period):
                self.reap()

        thread = threading.Thread(target=loop, name="embodia-web-reaper", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._stop.set()
        for key in list(self.sessions):
            self.free(key)
