"""Calibrated success estimates: map imagination's raw estimate to how often such steps really succeed.

The raw estimate (the share of imagined rollouts in which a skill succeeded) is biased skill by skill:
the tiny model underrates easy skills, and its cloned action prior fails where the scripted expert
would not. A RIG veto must fire only on a *confident* predicted failure, so the raw estimate is
replaced by the real success rate of steps whose raw estimate fell in the same bin, for the same
skill, shrunk towards the rate of all skills in that bin when a skill has few examples (a
beta-binomial with ``strength`` pseudo-counts). It is fitted on the imagined-vs-real records that
the agent logs for every executed step (``ActionStep.imagined``) on dev-seed episodes and stored as
``calibration.json`` beside the world-model checkpoint.

It lives beside ``agents/imagination.py`` (not in ``world_models/``): it calibrates the agent's veto
from the agent's own episode records, read through ``tools.episodes``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agents.steps import ActionStep
from tools.episodes import LOG_FILE, read_log
from tools.io import atomic_write_text

CALIBRATION_FILE = "calibration.json"
#: Upper edges of the raw-estimate bins (the last one closes at 1).
EDGES = (0.05, 0.2, 0.5, 0.8, 1.0)
ALL = "*"


def _bin(raw: float) -> int:
    return min(bisect.bisect_left(EDGES, raw), len(EDGES) - 1)


@dataclass
class Calibration:
    """Per skill and raw-estimate bin: [steps seen, steps that really succeeded]; ``"*"`` pools all skills."""

    counts: dict[str, list[list[int]]] = field(default_factory=dict)
    strength: float = 5.0
    source: str = ""

    @classmethod
    def fit(cls, pairs: Iterable[tuple[str, float, bool]], strength: float = 5.0, source: str = "") -> Calibration:
        """From (skill, raw estimate, real success) triples."""
        counts: dict[str, list[list[int]]] = {}
        for skill, raw, ok in pairs:
            for key in (skill, ALL):
                row = counts.setdefault(key, [[0, 0] for _ in EDGES])[_bin(raw)]
                row[0] += 1
                row[1] += int(ok)
        if ALL not in counts:
            raise ValueError("no imagined-vs-real steps to calibrate on")
        return cls(counts, strength, source)

    def __call__(self, skill: str, raw: float) -> float:
        """The calibrated probability that ``skill`` really succeeds, given imagination's raw estimate."""
        b = _bin(raw)
        n_all, s_all = self.counts[ALL][b]
        pooled = (s_all + 1) / (n_all + 2)
        n, s = self.counts.get(skill, [[0, 0]] * len(EDGES))[b]
        return (s + self.strength * pooled) / (n + self.strength)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps({"edges": EDGES, "strength": self.strength, "source": self.source,
                                    "counts": self.counts}, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Calibration | None:
        """The calibration stored beside a checkpoint, or None when it has none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path} is not readable JSON ({exc}); refit it with "
                             f"`python -m agents.calibration`") from exc
        if tuple(data["edges"]) != EDGES:
            raise ValueError(f"{path}: bins {data['edges']} differ from this version's {EDGES}; refit it")
        return cls(data["counts"], data["strength"], data.get("source", ""))


def logged_steps(root: str | Path) -> Iterator[tuple[str, float, bool]]:
    """(skill, raw estimate, real success) of every executed step in the episode logs under ``root``."""
    for log in sorted(Path(root).rglob(LOG_FILE)):
        for record in read_log(log):
            seen = record.get("imagined")
            if record.get("type") == ActionStep.__name__ and seen:
                yield record["arguments"]["skill"], seen["raw_success"], seen["real_success"]


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.calibration RUN_DIR CHECKPOINT``: fit on a run's logs, store beside the checkpoint."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("runs", help="folder with episode logs recorded with imagination on (dev seeds)")
    parser.add_argument("checkpoint", help="world-model checkpoint folder to store calibration.json in")
    args = parser.parse_args(argv)
    calibration = Calibration.fit(logged_steps(args.runs), source=str(args.runs))
    print(f"{sum(n for n, _ in calibration.counts[ALL])} steps → {calibration.save(args.checkpoint)}")
    for b, (n, s) in enumerate(calibration.counts[ALL]):
        print(f"raw ≤ {EDGES[b]:.2f}: {s}/{n} really succeeded")


if __name__ == "__main__":
    main()
