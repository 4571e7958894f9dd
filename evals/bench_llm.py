"""Benchmark the default planner LLM: conversion, load, generation speed, and `score` latency.

    python -m evals.bench_llm --out runs/bench/llm.json

`score` is timed on a planner-like chat prompt (~400 tokens) with 12 options, three ways:
  fast-cold   packed single forward, prompt cache cleared (a brand-new prompt every decision);
  fast-warm   packed, the prompt differs from the previous call only in its tail (state/step), the
              realistic planner loop, so the shared header's KV cache is reused;
  naive       one uncached forward per option.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from agents.llm.transformers_backend import TransformersLLM
from tools.models.smollm2 import embedded_model_dir

OPTIONS = [
    " collect wood",
    " place table",
    " make wood pickaxe",
    " collect stone",
    " collect sapling",
    " place plant",
    " eat cow",
    " drink water",
    " sleep",
    " make stone pickaxe",
    " attack zombie",
    " explore",
]

HEADER = """You are the planner of an agent playing Crafter, a 2D survival game. Each turn you choose one skill.
Rules: health, food, drink and energy fall over time; eat cows, drink water and sleep to restore them.
Zombies appear on grass, especially at night; skeletons live in caves. A table needs wood nearby.
A wood pickaxe needs a nearby table and wood; a stone pickaxe needs a table, wood and stone; an iron
pickaxe needs a table, a furnace, wood, coal and iron. A furnace needs a nearby table and stone.
Achievements: collect wood, place table, make wood pickaxe, collect stone, place stone, make stone
pickaxe, collect coal, place furnace, collect iron, make iron pickaxe, collect diamond, eat cow,
drink water, wake up, collect sapling, place plant, eat plant, defeat zombie, defeat skeleton.
Skills: collect wood, place table, make wood pickaxe, collect stone, collect sapling, place plant,
eat cow, drink water, sleep, make stone pickaxe, attack zombie, explore.
Prefer skills that unlock new achievements; keep every vital stat above 3; never walk into lava.
Choose the skill that makes the most progress toward the goal."""


def planner_messages(step: int) -> list[dict[str, str]]:
    """A ~400-token planner prompt whose tail (state, history) changes with `step`."""
    history = "\n".join(
        f"step {s}: chose {OPTIONS[(s * 5) % len(OPTIONS)].strip()} -> {'success' if s % 3 else 'failed'}"
        for s in range(max(0, step - 5), step)
    )
    state = (
        f"Step {step}. Daylight 0.{(step * 7) % 10}. Health {9 - step % 4}/9, food {7 - step % 3}/9, drink "
        f"{6 - step % 5}/9, energy 8/9. Inventory: wood {step % 6}, stone {step % 2}, sapling 1. "
        f"Nearby: tree 2 steps north, water 5 steps east, grass all around, cow 4 steps south-west."
    )
    user = f"Goal: make a stone pickaxe.\nRecent history:\n{history}\nCurrent state: {state}\nWhich skill next?"
    return [{"role": "system", "content": HEADER}, {"role": "user", "content": user}]


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"median_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]}


def run(repeats: int, convert_cold: bool, threads: int | None) -> dict:
    results: dict = {"load_average_at_start": os.getloadavg()}  # other jobs on the cores skew every number
    if convert_cold:  # a fresh cache dir so the measured conversion really is the first one
        with tempfile.TemporaryDirectory() as tmp:
            results["cold_conversion_s"], _ = _timed(embedded_model_dir, Path(tmp) / "smollm2")
    model_dir = embedded_model_dir()
    results["cached_load_s"], llm = _timed(TransformersLLM, model_dir, name="transformers:smollm2", num_threads=threads)
    results["threads"] = torch.get_num_threads()

    llm.generate([{"role": "user", "content": "Hi"}], max_tokens=4)  # warm-up
    gen_tokens = []
    gen_seconds = []
    for _ in range(max(1, repeats // 4)):
        before = llm.usage.copy()
        llm.generate(
            [{"role": "user", "content": "Write a long story about a robot who learns to farm."}], max_tokens=64
        )
        used = llm.usage - before
        gen_tokens.append(used.completion_tokens)
        gen_seconds.append(used.seconds)
    results["generate_tokens_per_s"] = sum(gen_tokens) / sum(gen_seconds)
    results["generate_new_tokens"] = gen_tokens

    prompt_tokens = len(llm.tokenizer(llm.render(planner_messages(20)), add_special_tokens=False).input_ids)
    results["score_prompt_tokens"] = prompt_tokens
    results["score_options"] = len(OPTIONS)
    cold, warm, naive = [], [], []
    for i in range(repeats):
        messages = planner_messages(20 + i)
        llm.clear_prefix_cache()
        cold.append(_timed(llm.score, messages, OPTIONS)[0])
        warm.append(_timed(llm.score, planner_messages(21 + i), OPTIONS)[0])  # tail changed, header reused
        if i < 3:  # slow; three runs show the gap
            naive.append(_timed(llm.score_naive, messages, OPTIONS)[0])
    results["score_fast_cold"] = _stats(cold)
    results["score_fast_warm"] = _stats(warm)
    results["score_naive"] = _stats(naive)
    results["naive_over_fast_cold"] = results["score_naive"]["median_ms"] / results["score_fast_cold"]["median_ms"]
    results["naive_over_fast_warm"] = results["score_naive"]["median_ms"] / results["score_fast_warm"]["median_ms"]
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return results


def report(results: dict, console: Console) -> None:
    load = ", ".join(f"{x:.1f}" for x in results["load_average_at_start"])
    table = Table(title=f"transformers:smollm2, fp32 CPU, {results['threads']} threads, load avg {load}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if "cold_conversion_s" in results:
        table.add_row("cold conversion (GGUF -> safetensors)", f"{results['cold_conversion_s']:.1f} s")
    table.add_row("cached load", f"{results['cached_load_s']:.2f} s")
    table.add_row("generate, batch 1, 64 tokens", f"{results['generate_tokens_per_s']:.1f} tok/s")
    n = f"{results['score_prompt_tokens']} tok prompt, {results['score_options']} options"
    for key, label in [
        ("score_fast_cold", "fast, cold"),
        ("score_fast_warm", "fast, prefix reused"),
        ("score_naive", "naive"),
    ]:
        s = results[key]
        table.add_row(f"score {label} ({n})", f"median {s['median_ms']:.0f} ms / p95 {s['p95_ms']:.0f} ms")
    table.add_row(
        "naive / fast (cold, warm)", f"{results['naive_over_fast_cold']:.1f}x, {results['naive_over_fast_warm']:.1f}x"
    )
    table.add_row("peak RSS", f"{results['peak_rss_mb']:.0f} MB")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/llm.json"))
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--skip-conversion", action="store_true", help="do not time a cold GGUF conversion")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: see cpu_threads)")
    args = parser.parse_args()
    results = run(args.repeats, convert_cold=not args.skip_conversion, threads=args.threads)
    report(results, Console())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
