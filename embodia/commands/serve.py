"""``embodia serve``: the web chat (Gradio) on 127.0.0.1 unless ``--host`` says otherwise.

No share tunnel, no analytics, no fonts or scripts from the internet: nothing leaves the machine. The port
is checked before the planner loads, so a used port is a clear exit 2, not a traceback after a long load.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from agents.llm import DEFAULT_SPEC
from embodia.options import AdapterOption, DeviceOption, DtypeOption, LLMOption, SkillsOption, WorldModelOption


def check_port(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served on (None: it can); bound the way the web server binds it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"--host {host!r} is not an address of this machine ({exc.strerror})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another embodia serve?): stop it, or pick "
                        "another with --port")
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port of the web page")] = 7860,
    host: Annotated[str, typer.Option(help="address to listen on; 127.0.0.1 keeps the page to this machine "
                                      "(0.0.0.0 opens it to the network: anyone who reaches it drives the agent)")]
    = "127.0.0.1",
    seed: Annotated[int, typer.Option(min=0, help="world seed of each new session")] = 0,
    llm: LLMOption = DEFAULT_SPEC,
    skills: SkillsOption = "expert",
    imagine: Annotated[bool, typer.Option(help="imagine each chosen skill in the learned world model first "
                                          "(RIG) and show the imagined frame")] = False,
    world_model: WorldModelOption = None,
    out: Annotated[Path, typer.Option(help="folder of the session folders (log, video, saves)")] = Path("runs/web"),
    history: Annotated[list[Path] | None, typer.Option(help="folders whose saved episodes the History tab "
                                                       "replays (default: runs)")] = None,
    max_sessions: Annotated[int, typer.Option(min=1, help="browser sessions alive at once")] = 4,
    idle_timeout: Annotated[float, typer.Option(min=1, help="seconds before an unused session is freed")] = 900.0,
    fps: Annotated[float, typer.Option(min=0.5, max=60, help="most live frames a second sent to a page")] = 10.0,
    video: Annotated[bool, typer.Option(help="write each session's video.mp4")] = True,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    adapter: AdapterOption = "default",
) -> None:
    """Web chat with an agent in a persistent world per browser tab: streamed steps, live frame, interrupt, saves."""
    from embodia.cli import check_out, console, fail, load_llm, make_config
    from embodia.text import user_text

    if (problem := check_port(host, port)) is not None:
        raise fail(problem)
    check_out(out)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise fail("embodia serve needs gradio: pip install 'embodia[web]'") from exc
    from embodia.web.app import CSS, THEME, build_app
    from embodia.web.sessions import ServeConfig, SessionPool, SharedLLM, WebSession

    agent_config = make_config(skills=skills, imagination=imagine, world_model=world_model or "")
    planner = load_llm(llm, device, dtype, adapter)
    shared = SharedLLM(planner) if planner is not None else None
    config = ServeConfig(root=out, seed=seed, max_sessions=max_sessions, idle_seconds=idle_timeout, fps=fps,
                         video=video)
    pool = SessionPool(lambda key: WebSession(key, shared, agent_config, config), config)
    roots = [out, *(history or [Path("runs")])]
    demo = build_app(pool, roots, imagine)
    demo.queue(default_concurrency_limit=max_sessions)
    pool.start_reaper()
    console.print(f"[bold]embodia serve[/] on http://{user_text(host)}:{port} — sessions in {user_text(out)} "
                  f"(at most {max_sessions}, freed after {idle_timeout:.0f} s idle); Ctrl-C stops")
    try:
        demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
                    show_error=False, ssr_mode=False, mcp_server=False, pwa=False, footer_links=[],
                    allowed_paths=[str(p.resolve()) for p in roots], theme=THEME, css=CSS,
                    enable_monitoring=False)
    except OSError as exc:  # the port was taken between the check and the bind
        raise fail(f"cannot listen on {host}:{port}: {exc}") from exc
    except KeyboardInterrupt:
        console.print()
    finally:
        pool.close()
        demo.close()
