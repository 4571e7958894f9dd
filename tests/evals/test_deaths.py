"""Deaths per cause: carried from the episode summary into results records, counted, and shown in the reports."""

import json

from evals.metrics import deaths_per_cause, summarise
from evals.report import write_comparison, write_report
from evals.runner import RUN_FILE, EvalConfig, run_suite
from evals.store import RESULTS_FILE, load_results
from evals.suite import load_suite
from tools.io import atomic_write_json, atomic_write_jsonl


def test_deaths_are_counted_per_cause_in_a_fixed_order():
    records = [{"death_cause": c} for c in ("thirst", "zombie", None, "zombie", "lava")] + [{}]
    assert deaths_per_cause(records) == {"zombie": 2, "lava": 1, "thirst": 1}
    assert list(deaths_per_cause(records)) == ["zombie", "lava", "thirst"]
    assert summarise([{"goal": "open", "success": False, "death_cause": None}], ["open"]).deaths == {}


def test_a_real_run_records_the_cause_and_the_reports_list_it(tmp_path):
    run = tmp_path / "run"
    records = run_suite(EvalConfig(load_suite("smoke"), "random", None, run, num_seeds=1))
    assert records and all("death_cause" in r for r in records)  # the runner carries the summary's field
    alive = write_report(run).read_text()
    assert "## Deaths per cause" in alive
    if not any(r["death_cause"] for r in records):
        assert f"None of the {len(records)} episodes ended in the agent's death." in alive

    # the same run as if two episodes had been killed: the tables follow the records
    killed = [{**r, "death_cause": c} for r, c in zip(records, ["zombie", "thirst", None], strict=False)]
    atomic_write_jsonl(run / RESULTS_FILE, killed)
    assert [r["death_cause"] for r in load_results(run / RESULTS_FILE)][:2] == ["zombie", "thirst"]
    report = write_report(run).read_text()
    n = len(records)
    assert f"2 of {n} episodes ended in the agent's death." in report
    assert f"| zombie | 1 | {100 / n:.1f}% |" in report and f"| thirst | 1 | {100 / n:.1f}% |" in report
    table = write_comparison([run, run], tmp_path / "cmp").read_text()
    assert "| zombie | 1 | 1 |" in table and "| lava | 0 | 0 |" in table


def test_a_learned_skills_run_is_labelled_as_such(tmp_path):
    run = tmp_path / "run"
    run_suite(EvalConfig(load_suite("smoke"), "random", None, run, num_seeds=1))
    assert write_report(run).read_text().startswith("# smoke — random\n")  # expert skills: no suffix
    info = json.loads((run / RUN_FILE).read_text())
    info["identity"].setdefault("agent_config", {})["skills"] = "learned"  # what `--skills learned` records
    atomic_write_json(run / RUN_FILE, info)
    assert write_report(run).read_text().startswith("# smoke — random, learned skills\n")
