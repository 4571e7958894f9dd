"""Perception benchmark: how well the pixel reader and the VLM read held-out frames, what they cost, and
what the agent achieves on pixels (perception privileged/pixels x skills expert/learned).

    python -m evals.bench_vlm --frames data/vlm-frames/heldout.safetensors --out runs/bench/vlm.json \
        --techtree-seeds 1 --open-seeds 1

Reading accuracy is against the privileged truth of held-out worlds (seeds from 20000, never trained on):
inventory exact match (all 16 slots of a frame right) and per-slot accuracy, vitals mean absolute error,
precision/recall of the kinds of things in view, facing-tile and daylight-phase accuracy. The VLM part asks
its trained question forms about a sample of frames (answered by constrained choice; see
``agents.perception``) and times the answers. The 2x2 runs ``embodia eval`` once per cell.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from agents.perception import DEFAULT_VLM, answer_options
from tools.envs.crafter import ACHIEVEMENTS, VITALS, daylight_phase
from tools.io import atomic_write_json, read_jsonl
from tools.models.tile_encoder import readings
from tools.vlm_data import FrameSet, answer, question


def reading_accuracy(encoder, frames: FrameSet, batch: int = 256) -> dict[str, float]:
    """Per-field accuracy of the encoder's structured reading against the frames' truth."""
    got = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            got += readings(encoder(torch.from_numpy(frames.frames[start: start + batch])))
    truth = [frames.reading(i) for i in range(len(frames))]
    exact = [g.inventory == t.inventory for g, t in zip(got, truth, strict=True)]
    slots = [g.inventory[n] == t.inventory[n] for g, t in zip(got, truth, strict=True) for n in t.inventory]
    vitals = [abs(g.inventory[n] - t.inventory[n]) for g, t in zip(got, truth, strict=True) for n in VITALS]
    tp = fp = fn = 0
    for g, t in zip(got, truth, strict=True):
        seen, real = set(g.visible()), set(t.visible())
        tp, fp, fn = tp + len(seen & real), fp + len(seen - real), fn + len(real - seen)
    return {
        "frames": len(frames),
        "inventory_exact_match": float(np.mean(exact)),
        "inventory_slot_accuracy": float(np.mean(slots)),
        "vitals_mae": float(np.mean(vitals)),
        "objects_precision": tp / max(1, tp + fp),
        "objects_recall": tp / max(1, tp + fn),
        "facing_tile_accuracy": float(np.mean([g.facing_tile() == t.facing_tile() for g, t in zip(got, truth,
                                                                                               strict=True)])),
        "cell_accuracy": float(np.mean([np.mean(g.cells == t.cells) for g, t in zip(got, truth, strict=True)])),
        "daylight_phase_accuracy": float(np.mean([daylight_phase(g.daylight) == daylight_phase(t.daylight)
                                                  for g, t in zip(got, truth, strict=True)])),
    }


def vlm_answers(vlm, frames: FrameSet, n: int, seed: int = 0) -> dict[str, float]:
    """The VLM's accuracy and latency on ``n`` count questions (constrained choice) and ``n // 4`` free looks."""
    rng = random.Random(seed)
    right, seconds = 0, []
    items = [k for k in frames.reading(0).inventory]
    for _ in range(n):
        i = rng.randrange(len(frames))
        reading = frames.reading(i)
        held = [k for k in items if reading.inventory[k] > 0]
        subject = rng.choice(held) if held and rng.random() < 0.7 else rng.choice(items)
        options = answer_options("count", subject, reading)
        started = time.perf_counter()
        scores = vlm.score(frames.frames[i], question("count", subject), options)
        seconds.append(time.perf_counter() - started)
        right += options[int(np.argmax(scores))] == answer(reading, "count", subject)
    free = []
    for _ in range(max(1, n // 4)):
        i = rng.randrange(len(frames))
        started = time.perf_counter()
        text, _, _ = vlm.answer(frames.frames[i], "What do you see?")
        free.append((time.perf_counter() - started, text, answer(frames.reading(i), "see")))
    return {"count_questions": n, "count_accuracy": right / n,
            "count_answer_ms_median": 1000 * float(np.median(seconds)),
            "see_answer_ms_median": 1000 * float(np.median([f[0] for f in free])),
            "see_examples": [{"vlm": f[1], "truth": f[2]} for f in free[:3]]}


def crafter_score(records: list[dict]) -> float:
    """Crafter's score: geometric mean over achievements of (1 + success rate in %), minus 1."""
    rates = [100 * np.mean([a in r.get("achievements", []) for r in records]) for a in ACHIEVEMENTS]
    return float(math.exp(np.mean([math.log(1 + r) for r in rates])) - 1)


def cell(suite: str, perception: str, skills: str, seeds: int, out: Path) -> dict:
    """One cell of the 2x2: ``embodia eval`` (critic-only planner) and its success / score."""
    command = [sys.executable, "-m", "embodia", "eval", suite, "--agent", "rafa", "--llm", "none", "--split",
               "heldout", "--num-seeds", str(seeds), "--workers", "1", "--threads", "1", "--video", "none",
               "--skills", skills, "--perception", perception, "--out", str(out), "--resume"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    records = read_jsonl(out / "results.jsonl")
    return {"suite": suite, "perception": perception, "skills": skills, "episodes": len(records),
            "success_rate": float(np.mean([r["success"] for r in records])), "crafter_score": crafter_score(records),
            "mean_env_steps": float(np.mean([r.get("env_steps") or 0 for r in records])),
            "wall_seconds": round(time.perf_counter() - started, 1), "command": " ".join(command[1:])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=Path, default=Path("data/vlm-frames/heldout.safetensors"))
    parser.add_argument("--vlm", type=Path, default=DEFAULT_VLM)
    parser.add_argument("--questions", type=int, default=40, help="VLM count questions (0: skip the VLM part)")
    parser.add_argument("--techtree-seeds", type=int, default=0, help="held-out seeds per 2x2 cell (0: skip)")
    parser.add_argument("--open-seeds", type=int, default=0, help="crafter-open held-out seeds per cell (0: skip)")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench/vlm-cells"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/vlm.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from tools.models.tile_encoder import VisionEncoder

    frames = FrameSet.load(args.frames)
    encoder = VisionEncoder.from_pretrained(args.vlm / "encoder").eval()
    result: dict = {"frames": str(args.frames), "vlm": str(args.vlm), "reading": reading_accuracy(encoder, frames)}
    started = time.perf_counter()
    for i in range(50):
        encoder.read(frames.frames[i])
    result["reading"]["read_ms_per_frame"] = 1000 * (time.perf_counter() - started) / 50
    print("encoder reading:", json.dumps(result["reading"], indent=1))
    if args.questions:
        from agents.vision.vlm import load_vlm

        result["vlm"] = vlm_answers(load_vlm(args.vlm), frames, args.questions)
        print("vlm:", json.dumps(result["vlm"], indent=1))
    cells = []
    for suite, seeds in (("crafter-techtree", args.techtree_seeds), ("crafter-open", args.open_seeds)):
        for perception in ("privileged", "pixels") if seeds else ():
            for skills in ("expert", "learned"):
                cells.append(cell(suite, perception, skills, seeds, args.runs / f"{suite}-{perception}-{skills}"))
                print(json.dumps(cells[-1]))
    result["cells"] = cells
    atomic_write_json(args.out, result)
    print("| suite | perception | skills | episodes | success | Crafter score |\n|---|---|---|---|---|---|")
    for c in cells:
        print(f"| {c['suite']} | {c['perception']} | {c['skills']} | {c['episodes']} | {c['success_rate']:.0%} | "
              f"{c['crafter_score']:.1f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
