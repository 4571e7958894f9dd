"""Ctrl-C while ``embodia`` is still importing its packages exits 130 with one line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.signals import sigint_default

# A finder that delivers the Ctrl-C exactly while agents.rafa is being imported (where a real Ctrl-C in the
# first half second lands), then the real entry point, as the console script calls it.
INTERRUPTED_IMPORT = """
import os, signal, sys

class CtrlCDuringImport:
    def find_spec(self, name, path=None, target=None):
        if name == "agents.rafa":
            os.kill(os.getpid(), signal.SIGINT)  # Python turns it into KeyboardInterrupt right here
        return None

sys.meta_path.insert(0, CtrlCDuringImport())
sys.argv = ["embodia", "--help"]
from embodia import main
main()
"""


def test_ctrl_c_during_startup_exits_130_without_a_traceback():
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], preexec_fn=sigint_default)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "stopped (Ctrl-C)" in done.stdout


def test_the_entry_point_still_runs_commands():
    done = subprocess.run([sys.executable, "-m", "embodia", "run", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and "--skills" in done.stdout
