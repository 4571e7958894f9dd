"""Scale-out on this machine: eval episodes/s with the process pool and with Ray (1 and 2 workers), Ray's
start-up cost, and VLA training samples/s under ``accelerate launch`` with 1 and 2 processes (DDP over gloo).

    python -m evals.bench_scale --out runs/bench/scale.json          # ~5 minutes on 2 cores
    python -m evals.bench_scale --quick --out runs/bench/scale.json  # fewer episodes and steps

Prints a table, writes JSON, and states the projection to a cluster as a formula of these measurements:
``wall(N episodes, C workers) ≈ T_start + N / (C · r1 · e)``, with ``r1`` one worker's episodes/s, ``e`` the
parallel efficiency measured at two workers (``r2 / (2 · r1)``; here 2 workers share 2 cores with the driver,
so e is a pessimistic value for nodes with a core per worker) and ``T_start`` Ray's start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.executors import RayExecutor
from evals.runner import EvalConfig, machine, run_suite
from evals.suite import load_suite


def eval_rate(executor: str, workers: int, num_seeds: int, folder: Path) -> dict[str, Any]:
    """crafter-goals, critic only, heldout seeds: episodes/s from the call to the last record."""
    out = folder / f"{executor}-{workers}"
    config = EvalConfig(load_suite("crafter-goals"), "rafa", "none", out, split="heldout", num_seeds=num_seeds,
                        workers=workers, threads=1, executor=executor)
    started = time.perf_counter()
    records = run_suite(config)
    seconds = time.perf_counter() - started
    return {"executor": executor, "workers": workers, "episodes": len(records), "seconds": round(seconds, 2),
            "episodes_per_s": round(len(records) / seconds, 3),
            "successes": sum(r["success"] for r in records)}


def ray_startup(workers: int) -> dict[str, float]:
    """``ray.init`` of a local runtime, one trivial task round trip, ``ray.shutdown``: each in seconds."""
    executor = RayExecutor(workers, 1)
    started = time.perf_counter()
    values = list(executor.map(abs, [-1]))
    total = time.perf_counter() - started
    assert values[0][1] == 1
    return {"init_s": round(executor.startup_seconds or 0.0, 2), "init_task_shutdown_s": round(total, 2)}


def train_rate(processes: int, steps: int, data: str, folder: Path) -> dict[str, Any]:
    """The tiny HybridVLA under ``accelerate launch --num_processes N --cpu`` at the same global batch (64)."""
    out = folder / f"train-{processes}"
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu",
               str(Path(sys.executable).with_name("embodia")), "train", "vla", "--data", data, "--out", str(out),
               "--steps", str(steps), "--batch-size", str(64 // processes), "--eval-seeds", "",
               "--checkpoint-every", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"processes": processes, "steps": steps, "global_batch": 64,
            "wall_s": round(time.perf_counter() - started, 1),
            "train_samples_per_s": metrics["train_samples_per_s"],
            "validation_loss": metrics["validation"].get("loss")}


def small_dataset(data: str, folder: Path, shards: int = 6) -> Path:
    """The first ``shards`` worlds of ``data`` (a few thousand rows): loading all of it would dominate the run."""
    small = folder / "train-data" / "data"
    if not small.is_dir():
        small.mkdir(parents=True)
        for shard in sorted(Path(data, "data").glob("*.parquet"))[:shards]:
            shutil.copy(shard, small / shard.name)
    return small.parent


def projection(rates: dict[tuple[str, int], float], startup: float) -> dict[str, Any]:
    """``wall ≈ T_start + N / (C · r1 · e)`` with the numbers measured here: ``r1``, ``e`` from the pool (Ray's
    rows include its start-up), ``T_start`` Ray's init + first task + shutdown."""
    r1, r2 = rates[("pool", 1)], rates[("pool", 2)]
    efficiency = r2 / (2 * r1)
    return {"formula": "wall_s(N, C) = T_start + N / (C * r1 * e)", "T_start_s": startup, "r1_episodes_per_s": r1,
            "e": round(efficiency, 3),
            "example_10000_episodes_on_64_workers_s": round(startup + 10_000 / (64 * r1 * efficiency), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/scale.json"))
    parser.add_argument("--quick", action="store_true", help="1 seed (22 episodes) and 30 training steps")
    parser.add_argument("--data", default="data/crafter-skills", help="episode dataset whose first worlds are the "
                        "training rows (`embodia collect`); the training rows are skipped without it")
    args = parser.parse_args(argv)
    num_seeds, steps = (1, 30) if args.quick else (2, 100)
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict[str, Any] = {"machine": machine(), "suite": "crafter-goals --llm none --split heldout",
                               "num_seeds": num_seeds, "eval": [], "train": []}
    try:
        results["ray_startup"] = ray_startup(2)
        for executor in ("pool", "ray"):
            for workers in (1, 2):
                results["eval"].append(eval_rate(executor, workers, num_seeds, folder))
                print(results["eval"][-1], flush=True)
        if Path(args.data, "data").is_dir():
            for processes in (1, 2):
                results["train"].append(train_rate(processes, steps, str(small_dataset(args.data, folder)), folder))
                print(results["train"][-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rates = {(r["executor"], r["workers"]): r["episodes_per_s"] for r in results["eval"]}
    results["projection"] = projection(rates, results["ray_startup"]["init_task_shutdown_s"])
    print(f"\n{'executor':<10}{'workers':>8}{'episodes':>10}{'seconds':>10}{'episodes/s':>12}")
    for r in results["eval"]:
        print(f"{r['executor']:<10}{r['workers']:>8}{r['episodes']:>10}{r['seconds']:>10}{r['episodes_per_s']:>12}")
    print(f"Ray start-up: {results['ray_startup']}")
    for r in results["train"]:
        print(f"train: {r['processes']} process(es), global batch 64: {r['train_samples_per_s']} samples/s")
    print(f"projection: {results['projection']}")
    from tools.io import atomic_write_json

    atomic_write_json(args.out, results, indent=1)
    print(f"→ {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
