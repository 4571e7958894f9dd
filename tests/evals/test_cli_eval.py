"""``embodia eval`` end to end as a user runs it: smoke suite → JSONL → report whose numbers match it."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from embodia.cli import app
from evals.metrics import summarise, wilson_interval
from evals.store import load_results
from evals.suite import load_suite

CLI = [sys.executable, "-m", "embodia", "eval"]


def embodia_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_smoke_suite_report_matches_results_and_compare(tmp_path: Path):
    oracle, random = tmp_path / "oracle", tmp_path / "random"
    proc = embodia_eval("smoke", "--agent", "oracle", "--workers", "2", "--out", str(oracle))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = load_results(oracle / "results.jsonl")
    suite = load_suite("smoke")
    assert sorted(r["episode"] for r in records) == sorted(
        f"{g}/seed-{s}" for g in suite.goals for s in suite.split("dev"))

    saved = json.loads((oracle / "results.json").read_text())
    expected = summarise(records, list(suite.goals)).to_dict()
    assert saved["goals"] == expected["goals"] and saved["overall"] == expected["overall"]
    report = (oracle / "report.md").read_text()
    assert "# smoke — oracle †" in report and "privileged" in report
    for goal in suite.goals:
        mine = [r for r in records if r["goal"] == goal]
        wins = sum(r["success"] for r in mine)
        low, high = wilson_interval(wins, len(mine))
        steps = sum(r["env_steps"] for r in mine) / len(mine)
        row = next(line for line in report.splitlines() if line.startswith(f"| {goal} |"))
        assert f"{wins}/{len(mine)} ({100 * wins / len(mine):.1f}%)" in row
        assert f"[{100 * low:.1f}%, {100 * high:.1f}%]" in row and f"| {steps:.1f} |" in row
    for plot in ("plots/goal_success.png", "plots/achievements.png"):
        assert (oracle / plot).read_bytes()[:4] == b"\x89PNG"

    proc = embodia_eval("smoke", "--agent", "random", "--num-seeds", "1", "--video", "failures", "--out", str(random))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for record in load_results(random / "results.jsonl"):
        assert (record["video"] is None) == record["success"]  # videos of failures only
        assert record["video"] is None or (random / record["video"]).stat().st_size > 1000

    proc = embodia_eval("compare", str(oracle), str(random), "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = (tmp_path / "cmp" / "compare.md").read_text()
    # random ran one seed, so both are compared on that seed's 3 episodes (oracle finished all 6)
    assert "Compared on the 3 episodes" in table
    assert "| oracle † | smoke | dev | 3/6 |" in table and "| random | smoke | dev | 3/3 |" in table
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_exits_with_the_valid_choices(tmp_path: Path):
    runner = CliRunner()  # in-process: these fail before any episode runs
    result = runner.invoke(app, ["eval", "smoke", "--agent", "nosuch", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "valid agents: random, oracle, greedy, open-loop, rafa" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: crafter\ngoals: open\nseeds: {dev: [0]}\nmax_steps: 10\nworkers: 3\n")
    result = runner.invoke(app, ["eval", str(bad), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and f"{bad}:5: workers: unknown key" in " ".join(result.output.split())
    result = runner.invoke(app, ["eval", "compare", str(tmp_path)])
    assert result.exit_code == 2 and "not an evaluation run folder" in " ".join(result.output.split())


def test_an_out_that_cannot_be_a_run_folder_exits_2_before_any_episode(tmp_path: Path):
    runner = CliRunner()
    taken = tmp_path / "a-file"
    taken.write_text("not a run folder")
    for out, words in ((taken, "is a file"), (taken / "sub", "cannot create the run folder")):
        result = runner.invoke(app, ["eval", "smoke", "--llm", "none", "--out", str(out)])
        assert result.exit_code == 2 and words in result.output and str(out) in result.output, result.output
        assert "Traceback" not in result.output
    assert taken.read_text() == "not a run folder"
