"""Local servers for tests and benchmarks: a free loopback port, and waiting until a started server answers.

The web UI, the llama.cpp server and the DDP rendezvous all need a port nobody holds, and every caller that
starts a server must tell "still loading" from "died" from "hung" (a model load takes minutes on a busy 2-core
machine, and a dead server should fail at once with its log, not after the whole timeout).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServerStartError(RuntimeError):
    """A started server exited, or did not answer in time; the message holds the tail of its log."""


def wait_until_serving(process: subprocess.Popen, url: str, *, timeout: float, log: Path | None = None,
                       name: str = "the server", poll: float = 0.3) -> None:
    """Return once GET ``url`` answers; raise :class:`ServerStartError` if ``process`` exits or time runs out
    (the process is killed then)."""
    deadline = time.monotonic() + timeout
    tail = lambda: (log.read_text(errors="replace")[-2000:] if log and log.exists() else "")  # noqa: E731
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with {process.returncode}: {tail()}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(poll)
    process.kill()
    raise ServerStartError(f"{name} did not answer {url} within {timeout:.0f} s: {tail()}")
