"""The per-skill suite (``crafter-skills``, agent ``skill``) run from Python for the benchmarks: one run folder per
policy and inference mode, through the one runner (``evals.runner``: resume, Wilson intervals, report.md).

``bench_vla`` compares the inference modes of one checkpoint with the expert; ``bench_dagger`` compares DAgger
rounds. A mode other than the checkpoint's own is a sibling folder whose ``config.json`` names that mode (the
weights are copied: 1 MB), so ``--skills DIR`` and the run identity (weights digest + ``mode`` in the folder's
config) tell the runs apart.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from evals.metrics import summarise
from evals.report import write_report
from evals.runner import EvalConfig, run_suite
from evals.suite import load_suite
from tools.io import atomic_write_json

SUITE = "crafter-skills"
#: Skill names for the suite's goals, in the suite's order (the goals are achievements).
SKILL_OF_GOAL = {"collect_wood": "collect wood", "place_table": "place table", "make_wood_pickaxe":
                 "make wood_pickaxe", "collect_stone": "collect stone", "make_stone_pickaxe": "make stone_pickaxe",
                 "collect_coal": "collect coal", "place_furnace": "place furnace", "collect_drink": "drink water",
                 "eat_cow": "eat cow", "wake_up": "sleep", "defeat_zombie": "fight zombie"}


def mode_folder(checkpoint: str | Path, mode: str, out: Path) -> Path:
    """``checkpoint`` itself when it already acts in ``mode``; else a copy under ``out`` that does."""
    checkpoint = Path(checkpoint)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    if config.get("mode", "ensemble") == mode:
        return checkpoint
    folder = out / f"policy-{mode}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint / "model.safetensors", folder / "model.safetensors")
    atomic_write_json(folder / "config.json", {**config, "mode": mode})
    return folder


def run_skill_suite(skills: str, out: Path, split: str = "heldout", num_seeds: int | None = None,
                    suite: str = SUITE) -> dict[str, Any]:
    """Run (or finish: ``resume``) the per-skill suite with ``skills`` (expert, learned, a folder) into ``out``.

    Returns ``{"skills": {skill: {successes, attempts, success, ci}}, "mean": unweighted mean, "deaths": ...}``.
    """
    loaded = load_suite(suite)
    config = EvalConfig(loaded, "skill", None, out, split, num_seeds, threads=1, skills=skills)
    records = run_suite(config, resume=True)
    write_report(out)
    metrics = summarise(records, list(loaded.goals))
    per_skill = {SKILL_OF_GOAL.get(s.name, s.name): {"successes": s.successes, "attempts": s.episodes,
                                                     "success": round(s.success_rate, 3),
                                                     "ci": [round(s.ci_low, 3), round(s.ci_high, 3)]}
                 for s in metrics.goals}
    mean = sum(s["success"] for s in per_skill.values()) / max(1, len(per_skill))
    return {"run": str(out), "skills": per_skill, "mean": round(mean, 3), "deaths": metrics.deaths,
            "overall": [metrics.overall.successes, metrics.overall.episodes]}
