"""``embodia serve`` as a process: it listens on loopback only by default, and a used port is a clear exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import WHY


def non_loopback_ip() -> str | None:
    """An address of this machine other than 127.x (None if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_listens_on_loopback_only_by_default(server: tuple[str, Path]) -> None:
    import psutil

    port = int(server[0].rstrip("/").rsplit(":", 1)[1])
    listening = [c.laddr for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    address = non_loopback_ip()
    if address is None:
        pytest.skip("this machine has no non-loopback address to try")
    with pytest.raises(OSError), socket.create_connection((address, port), timeout=3):
        pass


def test_second_serve_on_a_used_port_exits_2(server: tuple[str, Path], tmp_path: Path) -> None:
    port = server[0].rstrip("/").rsplit(":", 1)[1]
    done = subprocess.run([sys.executable, "-m", "embodia", "serve", "--llm", "none", "--port", port,
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in done.stdout.replace("\n", " ")
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.skipif(WHY is not None, reason=f"web tests skipped: {WHY}")
def test_unknown_host_exits_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "embodia", "serve", "--llm", "none", "--host", "no.such.host.invalid",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not an address of this machine" in done.stdout.replace("\n", " ")
