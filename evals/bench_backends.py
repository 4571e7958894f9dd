"""Benchmark the planner backends side by side on the same prompts (evals/bench_llm.py's planner prompt).

    python -m evals.bench_backends --out runs/bench/backends.json [--backends transformers,llamacpp,openai]

Per backend: start-up (load until ready), generate tok/s (batch 1, 64 new tokens), decision latency
(one `score` of the ~450-token planner prompt with 12 options, the prompt's tail changing each step,
as in the planner loop; median and p95) and peak RSS. Each backend runs in its own process so peak
RAM is its own; `openai` is the openai backend against `python -m agents.llm.llamacpp_server` on
127.0.0.1 (RSS = the server's), where `score` is a constrained choice (that server's echo log-probs
are misaligned). Threads: --threads (default 2); pass 1 on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evals.bench_llm import OPTIONS, planner_messages
from tools.serving import free_port, wait_until_serving

STORY = [{"role": "user", "content": "Write a long story about a robot who learns to farm."}]


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"median_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]}


def _load(backend: str, threads: int):
    os.environ["EMBODIA_LLM_THREADS"] = str(threads)
    if backend == "transformers":
        from agents.llm.transformers_backend import TransformersLLM
        from tools.models.smollm2 import embedded_model_dir

        return TransformersLLM(embedded_model_dir(), name="transformers:smollm2", num_threads=threads), None
    if backend == "llamacpp":
        from agents.llm.llamacpp_backend import LlamaCppLLM
        from tools.models.smollm2 import find_embedded_gguf

        return LlamaCppLLM(find_embedded_gguf(), name="llamacpp:smollm2", num_threads=threads), None
    if backend == "openai":
        from agents.llm.openai_backend import OpenAILLM

        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "agents.llm.llamacpp_server", "--model", "smollm2",
                                   "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                                   "--n_threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1"
        wait_until_serving(server, f"{url}/models", timeout=240, name="llamacpp_server")
        return OpenAILLM("smollm2", url), server
    raise SystemExit(f"unknown backend {backend!r}: transformers, llamacpp or openai")


def measure(backend: str, repeats: int, threads: int) -> dict:
    """All numbers for one backend, in this process."""
    start = time.perf_counter()
    llm, server = _load(backend, threads)
    result: dict = {"backend": backend, "startup_s": time.perf_counter() - start, "threads": threads,
                    "capabilities": llm.capabilities.row()}
    try:
        llm.generate([{"role": "user", "content": "Hi"}], max_tokens=4)  # warm-up
        before = llm.usage.copy()
        for _ in range(2):
            llm.generate(STORY, max_tokens=64)
        used = llm.usage - before
        result["generate_tok_s"] = used.completion_tokens / used.seconds
        llm.score(planner_messages(19), OPTIONS)  # warm the header's cache
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            llm.score(planner_messages(20 + i), OPTIONS)
            times.append(time.perf_counter() - t)
        result["decision"] = _stats(times)
        result["score_mode"] = "log-likelihood" if llm.capabilities.score else "constrained choice"
        if server is not None:
            import psutil

            result["peak_rss_mb"] = psutil.Process(server.pid).memory_info().rss / 2**20  # the server's, now
        else:
            result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return result


def report(results: list[dict], console: Console) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"planner backends, SmolLM2-135M, load avg now {load}")
    for col in ["backend", "start-up", "generate tok/s", "decision median", "decision p95", "score by", "RSS"]:
        table.add_column(col, justify="left" if col in ("backend", "score by") else "right")
    for r in results:
        if "error" in r:
            table.add_row(r["backend"], "-", "-", "-", "-", r["error"][:60], "-")
            continue
        table.add_row(r["backend"], f"{r['startup_s']:.1f} s", f"{r['generate_tok_s']:.1f}",
                      f"{r['decision']['median_ms']:.0f} ms", f"{r['decision']['p95_ms']:.0f} ms", r["score_mode"],
                      f"{r['peak_rss_mb']:.0f} MB")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/backends.json"))
    parser.add_argument("--backends", default="transformers,llamacpp,openai")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one backend, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeats, args.threads)))
        return
    results = []
    for backend in args.backends.split(","):
        done = subprocess.run([sys.executable, "-m", "evals.bench_backends", "--one", backend, "--repeats",
                               str(args.repeats), "--threads", str(args.threads)], capture_output=True, text=True)
        if done.returncode != 0:
            results.append({"backend": backend, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "?"})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        Console(stderr=True).print(f"[dim]{backend} done[/]")
    report(results, Console())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"load_average_at_end": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
