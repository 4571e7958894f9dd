"""UniVLA's four training stages, each one run of the one trainer (``vla.train.train``).

``lam1`` -> ``lam2`` -> ``policy`` -> ``decoder``: each stage starts from the previous stage's weights
(``TrainConfig.init``) and writes ``OUT/stage-<name>/`` (policy, ``checkpoint/``, ``metrics.json``); the
decoder stage's policy is copied to ``OUT`` and runs the closed-loop eval. With ``resume`` a finished stage
(its ``metrics.json`` exists) is skipped and an unfinished one resumes from its checkpoint. With
``lam_checkpoint`` the latent action model stages are skipped and that checkpoint is the policy stage's start.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.episodes import write_json_atomic
from vla.base import CONFIG_FILE, WEIGHTS_FILE
from vla.univla.configuration_univla import STAGES

if TYPE_CHECKING:
    from vla.train import TrainConfig

METRICS_FILE = "metrics.json"


def stage_folder(out: str | Path, stage: str) -> Path:
    return Path(out) / f"stage-{stage}"


def train_stages(cfg: TrainConfig, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Run every stage of ``cfg.policy`` (stage ``"all"``); returns the metrics also written to ``OUT/metrics.json``:
    the decoder stage's (validation, skills, samples/s) plus ``stages`` (each stage's own)."""
    from vla.train import train  # vla.train dispatches here: import at call time

    stages = STAGES[2:] if cfg.policy.lam_checkpoint else STAGES
    init = cfg.policy.lam_checkpoint or cfg.init
    per_stage: dict[str, Any] = {}
    for number, stage in enumerate(stages):
        folder = stage_folder(cfg.out, stage)
        if cfg.resume and (folder / METRICS_FILE).is_file():
            per_stage[stage] = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
        else:
            def report(step: int, info: dict[str, float], number: int = number) -> None:
                if on_step is not None:  # one bar over all stages: cfg.steps in total
                    on_step(round((number * cfg.steps + step) / len(stages)), {**info, "stage": number + 1.0})

            per_stage[stage] = train(replace(cfg, out=str(folder), policy=replace(cfg.policy, stage=stage), init=init,
                                             eval_seeds=cfg.eval_seeds if stage == "decoder" else ()), report)
        init = str(folder)
    final = stage_folder(cfg.out, stages[-1])
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copyfile(final / name, Path(cfg.out) / f".{name}.tmp")
        (Path(cfg.out) / f".{name}.tmp").replace(Path(cfg.out) / name)
    metrics = {**per_stage[stages[-1]], "stages": {s: {k: v for k, v in m.items() if k != "config"}
                                                   for s, m in per_stage.items()}}
    write_json_atomic(Path(cfg.out) / METRICS_FILE, metrics)
    return metrics
