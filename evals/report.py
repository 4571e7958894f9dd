"""Reports from run folders: ``report.md``, PNG plots and ``results.json`` for one run; side-by-side comparisons.

Everything here is recomputed from ``results.jsonl`` and ``run.json`` alone, so a report can be
rebuilt (or a comparison made) from any finished or partly finished run folder, and the numbers
in it are exactly those of the JSONL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # the object API renders with Agg: no display, no pyplot global state

from evals.agents import agent_label
from evals.metrics import PUBLISHED_SCORES, RunMetrics, Stats, summarise
from evals.runner import RUN_FILE
from evals.store import RESULTS_FILE, load_results
from tools.envs.crafter import ACHIEVEMENTS
from tools.envs.crafter_deaths import DEATH_CAUSES
from tools.episodes import write_json_atomic

REPORT_FILE, SUMMARY_FILE = "report.md", "results.json"
ACHIEVEMENT_RATE = {"open-ended": "share of episodes that unlocked it",
                    "goal-conditioned": "success rate of its goal"}
PLOTS = {"goals": "plots/goal_success.png", "achievements": "plots/achievements.png"}


@dataclass
class Run:
    """A run folder read back: what was run, where, and its metrics."""

    folder: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]
    metrics: RunMetrics

    @classmethod
    def read(cls, folder: str | Path) -> Run:
        folder = Path(folder)
        if not (folder / RUN_FILE).exists():
            raise FileNotFoundError(f"{folder} is not an evaluation run folder (no {RUN_FILE})")
        info = json.loads((folder / RUN_FILE).read_text())
        records = load_results(folder / RESULTS_FILE)
        return cls(folder, info, records, summarise(records, info["identity"]["goals"]))

    @property
    def identity(self) -> dict[str, Any]:
        return self.info["identity"]

    @property
    def label(self) -> str:
        label = agent_label(self.identity["agent"], self.identity["llm"])
        adapter = self.identity.get("adapter")
        label = f"{label[:-1]} + {Path(adapter).name})" if adapter and label.endswith(")") else label
        skills = (self.identity.get("agent_config") or {}).get("skills")  # learned vs expert runs must differ
        return f"{label}, {skills} skills" if skills and skills != "expert" else label

    def restricted(self, episodes: set[str]) -> Run:
        """This run with only the given episodes, metrics recomputed."""
        records = [r for r in self.records if r["episode"] in episodes]
        return Run(self.folder, self.info, records, summarise(records, self.identity["goals"]))

    @property
    def expected(self) -> int:
        return len(self.identity["goals"]) * len(self.identity["seeds"])


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def success_cell(stats: Stats) -> str:
    return f"{stats.successes}/{stats.episodes} ({pct(stats.success_rate)})"


def ci_cell(stats: Stats) -> str:
    return f"[{pct(stats.ci_low)}, {pct(stats.ci_high)}]"


def score_cell(metrics: RunMetrics) -> str:
    return "— (needs all 22 achievements)" if metrics.crafter_score is None else f"{metrics.crafter_score:.1f}"


def deaths_lines(run: Run) -> list[str]:
    """The report's deaths section: how many episodes ended in the agent's death, and of what."""
    if not any("death_cause" in r for r in run.records):
        return ["Not recorded: these episodes were run before the death cause was kept."]
    n, died = len(run.records), sum(run.metrics.deaths.values())
    if not died:
        return [f"None of the {n} episodes ended in the agent's death."]
    return [f"{died} of {n} episodes ended in the agent's death.", "",
            *_table(["cause", "deaths", "share of episodes"],
                    [[c, str(k), pct(k / n)] for c, k in run.metrics.deaths.items()])]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


# --- one run ---
def write_report(folder: str | Path) -> Path:
    """Write ``report.md``, ``results.json`` and the plots into a run folder; returns the report path."""
    run = Run.read(folder)
    _plot_goals(run, run.folder / PLOTS["goals"])
    _plot_bars({run.label: run.metrics.achievement_rates}, run.folder / PLOTS["achievements"],
               f"per-achievement success ({ACHIEVEMENT_RATE[run.metrics.score_basis]})")
    write_json_atomic(run.folder / SUMMARY_FILE, {**run.info, "episodes": len(run.records),
                                                  "expected_episodes": run.expected, **run.metrics.to_dict()})
    ident, m = run.identity, run.metrics
    machine = run.info.get("machine", {})
    lines = [
        f"# {ident['suite']} — {run.label}", "",
        f"- split `{ident['split']}`, seeds {ident['seeds'][0]}…{ident['seeds'][-1]} ({len(ident['seeds'])}), "
        f"max {ident['max_steps']} env steps per episode",
        f"- episodes: {len(run.records)} of {run.expected}" + (" (incomplete run)" if len(run.records) < run.expected
                                                                else ""),
        f"- started {run.info.get('started', '?')} on {machine.get('host_cpu', '?')} × {machine.get('cpus', '?')} "
        f"CPUs, {machine.get('system', '?')}"
        + (f", load average {machine['load_average'][0]} at start" if "load_average" in machine else ""),
        f"- versions: {', '.join(f'{k} {v}' for k, v in run.info.get('versions', {}).items())}",
    ]
    if ident.get("privileged"):
        lines.append("- † privileged agent: reads the whole map and knows the dependency tree (an upper bound)")
    lines += ["", "## Headline", "",
              *_table(["success", "95% CI", "Crafter score", "score basis", "mean env steps", "mean LLM calls",
                       "mean tokens", "mean wall s", "errors"],
                      [[success_cell(m.overall), ci_cell(m.overall), score_cell(m), m.score_basis,
                        f"{m.overall.mean_env_steps:.1f}", f"{m.overall.mean_llm_calls:.1f}",
                        f"{m.overall.mean_tokens:.0f}", f"{m.overall.mean_wall_seconds:.2f}", str(m.overall.errors)]]),
              "", "Published Crafter scores (open-ended, for scale): "
              + ", ".join(f"{k} {v}" for k, v in PUBLISHED_SCORES.items()) + ".",
              "", "## Success per goal", "",
              *_table(["goal", "success", "95% CI", "mean env steps", "mean LLM calls", "mean tokens", "mean wall s"],
                      [[s.name, success_cell(s), ci_cell(s), f"{s.mean_env_steps:.1f}", f"{s.mean_llm_calls:.1f}",
                        f"{s.mean_tokens:.0f}", f"{s.mean_wall_seconds:.2f}"] for s in m.goals]),
              "", f"![success per goal]({PLOTS['goals']})", "",
              f"## Per-achievement success ({ACHIEVEMENT_RATE[m.score_basis]})", "",
              *_table(["achievement", "rate"], [[a, f"{r:.1f}%"] for a, r in m.achievement_rates.items()]),
              "", f"![per-achievement success]({PLOTS['achievements']})",
              "", "## Deaths per cause", "", *deaths_lines(run)]
    failed = [r for r in run.records if r.get("status") == "error"]
    if failed:
        lines += ["", "## Episodes that raised", "",
                  *(f"- `{r['episode']}`: {r['reason']}" for r in failed)]
    path = run.folder / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _plot_goals(run: Run, path: Path) -> None:
    goals = run.metrics.goals
    fig = Figure(figsize=(7, 0.32 * len(goals) + 1.4))
    ax = fig.subplots()
    rates = [100 * s.success_rate for s in goals]
    errors = [[100 * (s.success_rate - s.ci_low) for s in goals], [100 * (s.ci_high - s.success_rate) for s in goals]]
    ax.barh([s.name for s in goals], rates, xerr=errors, capsize=3, color="#4878a8")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("success rate (%), Wilson 95% CI")
    ax.set_title(f"{run.identity['suite']} — {run.label}", fontsize=10)
    _save(fig, path)


def _plot_bars(series: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """Grouped horizontal bars: one group per achievement, one bar per run."""
    fig = Figure(figsize=(7.5, 0.25 * len(ACHIEVEMENTS) * max(1, len(series)) ** 0.5 + 1.5))
    ax = fig.subplots()
    height = 0.8 / max(1, len(series))
    for i, (label, rates) in enumerate(series.items()):
        ax.barh([k + i * height for k in range(len(ACHIEVEMENTS))], [rates.get(a, 0.0) for a in ACHIEVEMENTS],
                height=height, label=label)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(ACHIEVEMENTS))], ACHIEVEMENTS, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("success rate (%)")
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- several runs ---
def write_comparison(folders: list[str | Path], out: str | Path) -> Path:
    """One table and one plot putting runs side by side; returns the path of ``compare.md``."""
    runs = [Run.read(f) for f in folders]
    common = set.intersection(*({r["episode"] for r in run.records} for run in runs))
    trimmed = any(len(run.records) > len(common) for run in runs)
    if trimmed:  # like with like: an interrupted run is compared on the episodes every run finished
        runs = [run.restricted(common) for run in runs]
    out = Path(out)
    header = ["agent", "suite", "split", "episodes", "success", "95% CI", "Crafter score", "score basis",
              "mean env steps", "mean LLM calls", "mean tokens", "mean wall s"]
    rows = [[run.label, run.identity["suite"], run.identity["split"], f"{len(run.records)}/{run.expected}",
             success_cell(run.metrics.overall), ci_cell(run.metrics.overall), score_cell(run.metrics),
             run.metrics.score_basis, f"{run.metrics.overall.mean_env_steps:.1f}",
             f"{run.metrics.overall.mean_llm_calls:.1f}", f"{run.metrics.overall.mean_tokens:.0f}",
             f"{run.metrics.overall.mean_wall_seconds:.2f}"] for run in runs]
    labels = [f"{run.label} [{run.identity['suite']}]" for run in runs]
    _plot_bars(dict(zip(labels, (r.metrics.achievement_rates for r in runs), strict=True)), out / "compare.png",
               "per-achievement success by run")
    note = [f"Compared on the {len(common)} episodes (goal × seed) that every run finished.", ""] if trimmed else []
    lines = ["# Comparison", "", *note, *_table(header, rows), "",
             "† privileged: reads the whole map and knows the dependency tree (an upper bound, not a competitor).",
             "", "## Per-achievement success (%)", "",
             *_table(["achievement", *labels],
                     [[a, *(f"{r.metrics.achievement_rates[a]:.1f}" if a in r.metrics.achievement_rates else "—"
                            for r in runs)] for a in ACHIEVEMENTS]),
             "", "![per-achievement success by run](compare.png)",
             "", "## Deaths per cause (episodes)", "",
             *_table(["cause", *labels], [[c, *(str(r.metrics.deaths.get(c, 0)) for r in runs)]
                                          for c in DEATH_CAUSES])]
    summaries = [{"folder": str(r.folder), "label": r.label, **r.identity, **r.metrics.to_dict()} for r in runs]
    write_json_atomic(out / "compare.json", {"common_episodes_only": trimmed, "runs": summaries})
    path = out / "compare.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
