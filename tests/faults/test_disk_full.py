"""A disk that fills up mid-write (RLIMIT_FSIZE in a child process: writes past the limit fail with EFBIG,
as on a full disk) loses nothing: the previous file or checkpoint stays whole and is what a rerun reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from agents.memory import Memory
from tools import train_state

LIMITED_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write raises OSError(EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def run_limited(code: str, limit: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose files cannot grow past ``limit`` bytes."""
    script = LIMITED_CHILD.format(limit=limit) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text('{"old": true}\n')
    done = run_limited(f"""
        from tools.io import atomic_write_bytes
        try:
            atomic_write_bytes({str(target)!r}, b"x" * 100_000)
        except OSError as exc:
            print("refused", exc.errno)
    """, limit=10_000)
    assert "refused 27" in done.stdout, done.stderr  # EFBIG
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left behind


def test_chat_memory_save_on_a_full_disk_keeps_the_previous_save(tmp_path):
    path = tmp_path / "memory.jsonl"
    previous = Memory()
    previous.add("reflection", "a table I placed earlier is not always within reach")
    previous.save(path)
    done = run_limited(f"""
        from agents.memory import Memory
        memory = Memory.load({str(path)!r})
        for i in range(2000):
            memory.add("reflection", "a long note " * 20 + str(i))
        try:
            memory.save({str(path)!r})
        except OSError as exc:
            print("refused", exc.errno)
    """, limit=4_000)
    assert "refused 27" in done.stdout, done.stderr
    assert [r.text for r in Memory.load(path).records] == [r.text for r in previous.records]


def test_a_checkpoint_that_does_not_fit_leaves_the_last_good_one_resumable(tmp_path):
    folder = tmp_path / "checkpoint"
    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters())

    def save_model(path: Path) -> None:
        from safetensors.torch import save_file
        save_file(dict(model.state_dict()), path / "model.safetensors")

    train_state.save(folder, step=3, optimizer=optimizer, save_model=save_model)
    done = run_limited(f"""
        from pathlib import Path
        import torch
        from safetensors.torch import save_file
        from tools import train_state
        model = torch.nn.Linear(512, 512)  # 1 MB of weights: more than the disk has left
        optimizer = torch.optim.AdamW(model.parameters())
        try:
            train_state.save(Path({str(folder)!r}), step=9, optimizer=optimizer,
                             save_model=lambda p: save_file(dict(model.state_dict()), p / "model.safetensors"))
        except train_state.CheckpointWriteError as exc:
            print("refused:", exc)
    """, limit=200_000)
    assert "refused:" in done.stdout and "(step 3) is intact" in done.stdout, done.stderr
    assert "File too large" in done.stdout and "--resume" in done.stdout
    assert train_state.recover(folder) == folder
    assert train_state.read_state(folder)["step"] == 3
    assert not folder.with_name("checkpoint.tmp").exists()  # the torn copy is cleared once the good one stands
