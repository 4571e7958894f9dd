"""Many agents, one model: ``embodia eval --workers N`` with N in-process planners against N workers sharing one
served planner (the openai backend → ``agents.llm.llamacpp_server`` on 127.0.0.1), same suite, same seeds.

    python -m evals.bench_served --workers 2 --num-seeds 2 --out runs/bench/served.json

The suite is ``planner-alone`` with ``--agent greedy`` (the LLM picks every step, so the planner's cost shows),
base model on both sides (``--adapter none``: the server serves the GGUF without the LoRA adapter). RAM is the
peak of the summed RSS of every process involved (eval driver, workers and, for the served run, the server),
sampled every 0.2 s. Needs ``embodia[llamacpp]`` for the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tools.io import atomic_write_json
from tools.serving import free_port, wait_until_serving


def _tree_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
    return total


def _run_eval(command: list[str], extra_pids: list[int]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss([proc.pid, *extra_pids]))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {err[-2000:]}")
    out = Path(command[command.index("--out") + 1])
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return {"episodes": len(records), "seconds": round(seconds, 1), "episodes_per_s": round(len(records) / seconds, 4),
            "successes": sum(bool(r.get("success")) for r in records), "peak_rss_mb": round(peak[0] / 2**20)}


def _start_server(port: int, log: Path, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "agents.llm.llamacpp_server", "--model", "smollm2", "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_ctx", "2048"]
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_until_serving(server, f"http://127.0.0.1:{port}/v1/models", timeout=240, log=log, name="llamacpp_server")
    return server


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--num-seeds", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/served.json")
    args = parser.parse_args(argv)
    embodia = str(Path(sys.executable).with_name("embodia"))
    folder = Path(tempfile.mkdtemp(prefix="bench-served-"))
    base = [embodia, "eval", "planner-alone", "--agent", "greedy", "--adapter", "none", "--split", "heldout",
            "--num-seeds", str(args.num_seeds), "--workers", str(args.workers), "--threads", "1", "--video", "none"]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = {"in-process": _run_eval([*base, "--llm", "transformers:smollm2", "--out", str(folder / "local")], [])}
    port = free_port()
    server = _start_server(port, folder / "server.log", args.server_threads)
    try:
        url = f"openai:smollm2@http://127.0.0.1:{port}/v1"
        rows["served"] = _run_eval([*base, "--llm", url, "--out", str(folder / "served")], [server.pid])
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"workers": args.workers, "num_seeds": args.num_seeds, "suite": "planner-alone", "agent": "greedy",
              "rows": rows, "folder": str(folder)}
    print("| planners | workers | episodes | successes | episodes/s | peak RSS (all processes) |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {args.workers} | {row['episodes']} | {row['successes']} | {row['episodes_per_s']} | "
              f"{row['peak_rss_mb']} MB |")
    atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
