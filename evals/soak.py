"""The soak: many eval episodes and chat turns, with RSS and open file descriptors at start, end and peak.

Shared by the slow-marked ``tests/faults/test_soak.py`` and ``evals.bench_reliability``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from evals.faults import eval_command, wait_gone
from evals.store import RESULTS_FILE, load_results


def _tree_usage(root: int) -> dict[str, Any]:
    """(RSS in MB, open file descriptors) of a process and of each of its worker processes."""
    import psutil

    parent = psutil.Process(root)
    workers = [c for c in parent.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
    return {"parent": (parent.memory_info().rss / 2**20, parent.num_fds()),
            "workers": [(w.memory_info().rss / 2**20, w.num_fds()) for w in workers]}


def soak_eval(folder: Path, episodes: int, workers: int = 2) -> dict[str, Any]:
    """``episodes`` short episodes through ``embodia eval`` with workers, sampling RSS and fds twice a second."""
    import psutil

    goals = ["collect_wood", "place_table", "make_wood_pickaxe", "collect_sapling", "collect_drink"]
    seeds = -(-episodes // len(goals))
    suite_file, out = folder / "soak.yaml", folder / "soak"
    suite_file.write_text(f"name: soak\nenv: crafter\ngoals: [{', '.join(goals)}]\n"
                          f"seeds: {{dev: {list(range(seeds))}}}\nmax_steps: 150\nagent: {{max_decisions: 20}}\n")
    proc = subprocess.Popen(eval_command(suite_file, out, "--workers", str(workers)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    while proc.poll() is None:
        try:
            if (out / RESULTS_FILE).exists():
                samples.append({**_tree_usage(proc.pid), "done": (out / RESULTS_FILE).read_bytes().count(b"\n")})
        except psutil.Error:
            pass
        time.sleep(0.5)
    left = wait_gone(proc.pid)
    records = load_results(out / RESULTS_FILE)
    if not samples:
        raise RuntimeError(f"embodia eval exited {proc.returncode} before its first episode was recorded")
    # start once every worker has loaded and run episodes (a tenth of the soak): warm-up is not a leak
    warm = max(2 * workers, episodes // 10)
    complete = [s for s in samples if len(s["workers"]) == workers and s["done"] >= warm] or samples
    first, last = complete[0], complete[-1]
    worker_rss = [max((w[0] for w in sample["workers"]), default=0.0) for sample in (first, last, *samples)]
    return {"episodes": len(records), "errors": sum(r["status"] == "error" for r in records),
            "seconds": round(time.monotonic() - started, 1), "exit": proc.returncode, "left_behind": len(left),
            "parent_rss_mb": [round(x, 1) for x in (first["parent"][0], last["parent"][0],
                                                    max(s["parent"][0] for s in samples))],
            "worker_rss_mb": [round(x, 1) for x in (*worker_rss[:2], max(worker_rss[2:]))],
            "parent_fds": [first["parent"][1], last["parent"][1], max(s["parent"][1] for s in samples)],
            "worker_fds": [max((w[1] for w in sample["workers"]), default=0) for sample in (first, last)]}


def soak_chat(folder: Path, turns: int) -> dict[str, Any]:
    """``turns`` lines through the real chat session (goals, questions, commands), RSS at start and end."""
    import psutil

    from agents.chat import ChatSession

    lines = ["collect wood", "what do you have?", "/look", "place a crafting table", "what did you do?",
             "make a wood pickaxe", "/save", "/reset {n}"]
    process = psutil.Process()
    session = ChatSession(None, seed=0, out_dir=folder / "chat", video=False)
    rss: list[float] = []
    fds: list[int] = []
    started = time.monotonic()
    try:
        for turn in range(turns):
            line = lines[turn % len(lines)].format(n=turn // len(lines))
            for _ in session.handle(line):
                pass
            if turn == min(len(lines) * 5, turns - 1) or turn == turns - 1:  # start: after warm-up (caches, imports)
                rss.append(process.memory_info().rss / 2**20)
                fds.append(process.num_fds())
    finally:
        session.close()
    return {"turns": turns, "seconds": round(time.monotonic() - started, 1),
            "rss_mb": [round(rss[0], 1), round(rss[-1], 1)], "fds": [fds[0], fds[-1]]}
