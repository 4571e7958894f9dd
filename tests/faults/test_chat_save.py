"""kill -9 and SIGTERM while a chat writes ``/save``: the folder always resumes as a whole save."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.chat import WORLD_FILE, read_saved

# A real chat session that saves once, then keeps growing its memory (one note per round, padded so
# each save takes a while) and saving again, announcing each save before it starts.
CHILD = r"""
import sys
from agents.chat import ChatSession
session = ChatSession(None, seed=5, out_dir=sys.argv[1], video=False)
list(session.handle("collect wood"))
for i in range(3000):
    session.agent.memory.add("note", f"round {i} " + "x" * 200)
session.save()
print("saved", len(session.agent.memory), flush=True)
for round_ in range(10**6):
    session.agent.memory.add("note", f"round extra {round_}")
    print("saving", len(session.agent.memory), flush=True)
    session.save()
    print("saved", len(session.agent.memory), flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_save_leaves_a_whole_save_behind(tmp_path: Path, sig: signal.Signals):
    rng = random.Random(sig)
    for attempt in range(3):
        out = tmp_path / f"chat{attempt}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True)
        sizes = {}
        for line in child.stdout:  # wait until the first full save and a second one under way
            word, count = line.split()
            sizes.setdefault(word, []).append(int(count))
            if word == "saving" and len(sizes.get("saving", [])) >= 2:
                break
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(sig)
        child.wait(timeout=60)
        for line in child.stdout.read().splitlines():  # what it announced before the signal landed
            word, count = line.split()
            sizes.setdefault(word, []).append(int(count))
        child.stdout.close()
        assert child.returncode == -sig

        seed, actions, memory = read_saved(out)  # parses: neither file is torn
        world = json.loads((out / WORLD_FILE).read_text())
        assert seed == 5 and len(actions) > 0
        # the resumed memory is exactly the one that belongs to the world file (a completed save or the
        # save in flight): never a half-written file, never memory ahead of its world
        assert len(memory) == world["memory_records"]
        assert world["memory_records"] in sizes["saved"] + sizes["saving"]
        assert memory.records[-1].text.startswith("round")
        leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
        assert len(leftovers) <= 1  # at most the killed writer's own temp file, never read back
