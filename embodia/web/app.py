"""The Gradio page of ``embodia serve``: chat, live (and imagined) frame, status, memory, skills, history, saves.

Every line typed goes through the browser session's :class:`~agents.chat.ChatSession` (``/save``, ``/look``,
``/motion`` … included), so the page runs no agent loop of its own. The page is built by :func:`build_app`
and launched by ``embodia.commands.serve``; ``GRADIO_ANALYTICS_ENABLED`` must be off before gradio is imported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from agents.chat import HELP, ChatReply
from embodia.web.files import episode_folders, episode_video, save_zip, unpack_save
from embodia.web.render import (
    Message,
    log_markdown,
    memory_rows,
    messages_for,
    safe,
    skill_rows,
    status_markdown,
    user_message,
)
from embodia.web.sessions import SessionPool, SessionsFull, WebSession
from tools.episodes import LOG_FILE, read_log

#: No font or script from the internet: the page uses the browser's own fonts.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])
CSS = "#live-frame img, #imagined-frame img {image-rendering: pixelated;}"
def say(chat: list[Message], text: str) -> list[Message]:
    """``chat`` with one more (already safe) reply of the assistant."""
    return [*chat, {"role": "assistant", "content": text}]


WELCOME: Message = {"role": "assistant", "content": safe(HELP) + "\n\nInterrupt stops the current goal; the world "
                    "and memory stay. Save gives a zip that Load takes back."}


def build_app(pool: SessionPool, history_roots: list[Path], imagine: bool) -> gr.Blocks:
    """The page; each browser tab gets its own session from ``pool`` on its first line."""

    def session_of(request: gr.Request) -> WebSession:
        return pool.get(request.session_hash or "anonymous")

    def imagined_frame(session: WebSession) -> np.ndarray | None:
        imagination = session.chat.agent.imagination
        last = getattr(imagination, "last", None)
        return last.frames[-1] if last is not None and len(last.frames) else None

    def view(session: WebSession, busy: bool = False) -> tuple[Any, Any, str]:
        return session.frame(), imagined_frame(session), status_markdown(session.chat.env.unwrapped, busy)

    def submit(line: str, chat: list[Message], request: gr.Request) -> Iterator[tuple[Any, ...]]:
        chat = list(chat or [])
        try:
            session = session_of(request)
        except SessionsFull as exc:
            yield say(chat, safe(exc)), gr.skip(), gr.skip(), gr.skip(), ""
            return
        if not line.strip():
            yield say(chat, "Type a goal or a question first (/help lists commands)."), *view(session), ""
            return
        chat.append(user_message(line))
        yield chat, *view(session, True), ""
        shown, period, last = -1, 1.0 / session.config.fps, 0.0
        for item in session.run(line):
            if isinstance(item, ChatReply) and item.quit:
                item = ChatReply("this is the web chat: close the tab to end the session (it is freed then, or "
                                 f"after {session.config.idle_seconds:.0f} s idle)")
            if item is not None:
                chat.extend(messages_for(item))
            elif session.live is None or session.live.frames == shown or time.perf_counter() - last < period:
                continue
            shown, last = session.live.frames if session.live else -1, time.perf_counter()
            yield chat, session.live.frame if session.live else gr.skip(), imagined_frame(session), \
                status_markdown(session.chat.env.unwrapped, True), gr.skip()  # the box may hold the next line
        yield chat, *view(session), gr.skip()

    def interrupt(request: gr.Request) -> None:
        found = pool.sessions.get(request.session_hash or "anonymous")
        if found is not None:
            found.interrupt.set()

    def refresh(request: gr.Request) -> tuple[Any, ...]:
        try:
            session = session_of(request)
        except SessionsFull as exc:
            return gr.skip(), gr.skip(), safe(exc), []
        return *view(session), memory_rows(session.chat.agent.memory)

    def save(chat: list[Message], request: gr.Request) -> tuple[list[Message], Any]:
        chat = list(chat or [])
        try:
            session = session_of(request)
            if not session.busy.acquire(blocking=False):  # a save mid-skill would split it
                return say(chat, "a goal is running: press Interrupt or wait for it to end, then Save"), None
            try:
                target = save_zip(session.chat)
            finally:
                session.busy.release()
        except (SessionsFull, OSError) as exc:
            return say(chat, f"cannot save: {safe(exc)} — nothing was lost"), None
        return say(chat, f"saved memory and world to {safe(target)} (download "
                                                        "below)"), str(target)

    def load(upload: str | None, chat: list[Message], request: gr.Request) -> tuple[Any, ...]:
        chat = list(chat or [])
        if not upload:
            return say(chat, "choose a session zip (from Save) to load first"), \
                gr.skip(), gr.skip(), gr.skip()
        key = request.session_hash or "anonymous"
        try:
            old = session_of(request)
            folder = unpack_save(upload, old.out_dir / f"loaded-{time.strftime('%H%M%S')}")
            fresh = WebSession(key, old.llm, old.agent_config, old.config, resume=folder,
                               generation=old.generation + 1)
        except (SessionsFull, ValueError, OSError) as exc:
            return say(chat, f"cannot load: {safe(exc)}"), \
                gr.skip(), gr.skip(), gr.skip()
        pool.replace(key, fresh)
        note = f"loaded a saved session: world seed {fresh.chat.seed}, {len(fresh.chat.env.actions)} actions " \
               f"replayed, {len(fresh.chat.agent.memory.records)} memories"
        return [WELCOME, {"role": "assistant", "content": safe(note)}], *view(fresh)

    def memory_view(request: gr.Request) -> list[list[Any]]:
        found = pool.sessions.get(request.session_hash or "anonymous")
        return memory_rows(found.chat.agent.memory) if found is not None else []

    def free(request: gr.Request) -> None:
        pool.free(request.session_hash or "anonymous")

    def list_history() -> Any:
        return gr.update(choices=[str(p) for p in episode_folders(history_roots)], value=None)

    def replay(folder: str | None) -> tuple[Any, str]:
        if not folder:
            return None, ""
        path = Path(folder)
        if not any(path.resolve().is_relative_to(r.resolve()) for r in history_roots):
            return None, "not a saved episode of this server"
        try:
            text = log_markdown(read_log(path / LOG_FILE))
        except (OSError, ValueError) as exc:
            text = f"cannot read the log: {safe(exc)}"
        video = episode_video(path)
        return (str(video) if video else None), text

    with gr.Blocks(title="embodia", delete_cache=(300, 1800)) as demo:
        gr.Markdown("## embodia — an agent in a Crafter world")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(value=[WELCOME], elem_id="chat", height=520, label="chat",
                                     feedback_options=None, group_consecutive_messages=False)
                with gr.Row():
                    box = gr.Textbox(placeholder="a goal or a question, e.g. 'collect wood'", show_label=False,
                                     elem_id="goal-box", scale=5, max_lines=4)
                    send = gr.Button("Send", variant="primary", elem_id="send", scale=1)
                    stop = gr.Button("Interrupt", variant="stop", elem_id="interrupt", scale=1)
            with gr.Column(scale=2):
                with gr.Row():
                    live = gr.Image(label="live frame", elem_id="live-frame", interactive=False, format="png",
                                    height=256)
                    imagined = gr.Image(label="imagined frame", elem_id="imagined-frame", interactive=False,
                                        format="png", height=256, visible=imagine)
                status = gr.Markdown("type a line to start your world", elem_id="status")
                with gr.Row():
                    save_button = gr.Button("Save", elem_id="save")
                    refresh_button = gr.Button("Refresh view", elem_id="refresh")
                download = gr.File(label="saved session", elem_id="download", interactive=False)
                upload = gr.File(label="load a saved session (zip from Save)", file_types=[".zip", ".json"],
                                 type="filepath", elem_id="upload")
                load_button = gr.Button("Load", elem_id="load")
        with gr.Tab("Memory"):
            memory = gr.Dataframe(headers=["kind", "step", "goal", "text"], elem_id="memory", interactive=False,
                                  wrap=True)
        with gr.Tab("Skills"):
            gr.Dataframe(value=skill_rows(), headers=["skill", "needs", "uses up", "gives", "description"],
                         interactive=False, wrap=True)
        with gr.Tab("History"):
            with gr.Row():
                episodes = gr.Dropdown(label="saved episode", choices=[], elem_id="episodes", scale=4)
                list_button = gr.Button("List episodes", elem_id="list-episodes", scale=1)
            video = gr.Video(label="replay", elem_id="replay", interactive=False)
            log = gr.Markdown(elem_id="replay-log")

        outputs = [chatbot, live, imagined, status, box]
        limit = pool.config.max_sessions  # one running line per session at once
        for trigger in (box.submit, send.click):
            trigger(submit, [box, chatbot], outputs, concurrency_limit=limit, concurrency_id="lines",
                    show_progress="hidden").then(memory_view, None, memory)
        stop.click(interrupt, None, None, concurrency_limit=None, show_progress="hidden")
        refresh_button.click(refresh, None, [live, imagined, status, memory])
        save_button.click(save, chatbot, [chatbot, download])
        load_button.click(load, [upload, chatbot], [chatbot, live, imagined, status])
        list_button.click(list_history, None, episodes)
        episodes.change(replay, episodes, [video, log])
        demo.unload(free)
    return demo

