"""The runner on the real env: deterministic results, crashes recorded, resume that loses and duplicates nothing."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from evals.runner import TIMING_FIELDS, EvalConfig, Job, prepare, run_job, run_suite
from evals.store import RESULTS_FILE, load_results
from evals.suite import SuiteError, load_suite

TINY = """\
name: tiny
env: crafter
goals: [collect_wood, place_table, make_wood_pickaxe]
seeds: {dev: [0, 1]}
max_steps: 150
agent: {max_decisions: 20}
"""


def behaviour(records):
    """Records without what measures time: what must repeat exactly under the same seeds."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


@pytest.mark.parametrize("agent", ["random", "rafa"])
def test_same_suite_agent_and_seed_give_identical_results(tmp_path, agent):
    suite = load_suite("smoke")
    runs = [run_suite(EvalConfig(suite, agent, "none", tmp_path / f"run{i}", num_seeds=1)) for i in range(2)]
    assert len(runs[0]) == len(suite.goals)
    assert behaviour(runs[0]) == behaviour(runs[1])
    assert all(r["status"] == "ok" for r in runs[0])


def test_threads_bound_torch_in_the_episode_process_without_changing_results(tmp_path):
    import torch

    suite, before = load_suite("smoke"), torch.get_num_threads()
    try:
        one = run_suite(EvalConfig(suite, "rafa", "none", tmp_path / "one", num_seeds=1, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    default = run_suite(EvalConfig(suite, "rafa", "none", tmp_path / "default", num_seeds=1))
    assert behaviour(one) == behaviour(default)
    with pytest.raises(ValueError, match="threads >= 0"):
        EvalConfig(suite, "rafa", "none", tmp_path / "bad", threads=-1)


def test_an_episode_that_raises_is_recorded_and_the_suite_goes_on(tmp_path):
    config = EvalConfig(load_suite("smoke"), "oracle", None, tmp_path / "run", num_seeds=1)
    blocker = config.out / "episodes" / "place_table" / "seed-0"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the episode folder should go")
    records = run_suite(config)
    failed = [r for r in records if r["status"] == "error"]
    assert [r["episode"] for r in failed] == ["place_table/seed-0"]
    assert failed[0]["success"] is False and "Traceback" in failed[0]["error"] and "Error" in failed[0]["reason"]
    assert sum(r["status"] == "ok" for r in records) == len(records) - 1
    assert len(load_results(config.out / RESULTS_FILE)) == len(records)


def test_run_job_never_raises(tmp_path):
    config = EvalConfig(load_suite("smoke"), "random", None, tmp_path)
    (tmp_path / "episodes").write_text("not a folder")
    record = run_job(config, Job("collect_wood", 0))
    assert record["status"] == "error" and record["episode"] == "collect_wood/seed-0"


def test_an_existing_run_needs_resume_and_the_same_settings(tmp_path):
    suite = load_suite("smoke")
    run_suite(EvalConfig(suite, "oracle", None, tmp_path, num_seeds=1))
    with pytest.raises(SuiteError, match="--resume"):
        run_suite(EvalConfig(suite, "oracle", None, tmp_path, num_seeds=1))
    with pytest.raises(SuiteError, match="different agent"):
        run_suite(EvalConfig(suite, "random", None, tmp_path, num_seeds=1), resume=True)
    assert len(run_suite(EvalConfig(suite, "oracle", None, tmp_path, num_seeds=1), resume=True)) == 3


def test_a_run_recorded_before_a_setting_existed_resumes_at_its_default_only(tmp_path):
    suite = dataclasses.replace(load_suite("smoke"), goals=("collect_wood",))
    config = EvalConfig(suite, "open-loop", None, tmp_path, num_seeds=1)
    run_suite(config)
    run_file = tmp_path / "run.json"
    recorded = json.loads(run_file.read_text())
    del recorded["identity"]["agent_config"]["imagine_weight"]  # as written before the field was added
    run_file.write_text(json.dumps(recorded))
    assert len(run_suite(config, resume=True)) == 1
    run_file.write_text(json.dumps(recorded))
    dreaming = EvalConfig(dataclasses.replace(suite, agent={**suite.agent, "imagine_weight": 0.5}), "open-loop",
                          None, tmp_path, num_seeds=1)
    with pytest.raises(SuiteError, match="different agent_config"):
        run_suite(dreaming, resume=True)


def test_resuming_after_the_adapter_weights_changed_is_refused(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"first weights")
    config = EvalConfig(load_suite("smoke"), "rafa", "transformers:smollm2", tmp_path / "run", adapter=str(adapter))
    prepare(config, resume=False)  # records the identity; no model is loaded
    prepare(config, resume=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"retrained weights")  # same folder, other weights
    with pytest.raises(SuiteError, match="different adapter_weights"):
        prepare(config, resume=True)


def test_a_world_model_is_evaluated_by_folder_and_its_weights_are_part_of_the_identity(tmp_path):
    import shutil

    from agents.imagination import DEFAULT_CHECKPOINT

    world_model = tmp_path / "wm"
    shutil.copytree(DEFAULT_CHECKPOINT, world_model)
    suite = load_suite("smoke")
    with pytest.raises(ValueError, match="only read with imagination on"):
        EvalConfig(suite, "rafa", "none", tmp_path / "x", world_model=str(world_model))
    with pytest.raises(ValueError, match="not a world-model checkpoint folder"):
        EvalConfig(suite, "rafa-imagine", "none", tmp_path / "x", world_model=str(tmp_path / "missing"))
    shipped = EvalConfig(suite, "rafa-imagine", "none", tmp_path / "shipped").identity()
    config = EvalConfig(suite, "rafa-imagine", "none", tmp_path / "run", world_model=str(world_model))
    assert config.agent_config().world_model == str(world_model)
    assert config.identity()["world_model_weights"] == shipped["world_model_weights"]  # a copy: same weights
    assert EvalConfig(suite, "rafa", "none", tmp_path / "off").identity()["world_model_weights"] is None
    prepare(config, resume=False)
    (world_model / "model.safetensors").write_bytes(b"retrained weights")
    with pytest.raises(SuiteError, match="different world_model_weights"):
        prepare(config, resume=True)
    recalibrated = EvalConfig(suite, "rafa-imagine", "none", tmp_path / "recalibrated", world_model=str(world_model))
    prepare(recalibrated, resume=False)
    (world_model / "calibration.json").write_text(json.dumps({"edges": [0.0, 1.0], "rates": [0.5]}))
    with pytest.raises(SuiteError, match="different world_model_calibration"):  # re-calibrated in place
        prepare(recalibrated, resume=True)
    raw = EvalConfig(suite, "greedy-blind-imagine", "none", tmp_path / "raw", world_model=str(world_model))
    assert raw.identity()["world_model_calibration"] is None  # raw estimates never read the calibration


def test_unknown_agent_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid agents: random, oracle, greedy, open-loop, rafa"):
        EvalConfig(load_suite("smoke"), "nosuch", None, tmp_path)


def test_resume_after_kill_9_loses_and_duplicates_nothing(tmp_path):
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(TINY)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "embodia", "eval", str(suite_file), "--agent", "random", "--workers", "2",
               "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-suite
    proc.wait()
    before = load_results(results)
    total = 3 * 2
    assert 2 <= len(before) < total, "the kill must land mid-suite"
    with results.open("ab") as handle:  # what a kill during a write leaves: half a line
        handle.write(b'{"episode": "collect_wood/seed-9", "half-writ')

    resumed = subprocess.run([*command, "--resume", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = load_results(results)
    keys = [r["episode"] for r in after]
    assert len(keys) == len(set(keys)) == total
    assert after[: len(before)] == before  # finished episodes kept as they were, not rerun
    assert b"half-writ" not in results.read_bytes()
    assert all(line.endswith("}") for line in results.read_text().splitlines())
    assert json.loads((out / "results.json").read_text())["overall"]["episodes"] == total


def test_the_planner_loads_the_adapter_embodia_run_would(tmp_path):
    from agents.llm.adapters import DEFAULT_PLANNER_ADAPTER

    suite = load_suite("smoke")
    default = EvalConfig(suite, "rafa", "transformers:smollm2", tmp_path)
    assert default.planner_adapter == str(DEFAULT_PLANNER_ADAPTER)
    assert default.identity()["adapter"] == str(DEFAULT_PLANNER_ADAPTER)  # a resume must use the same one
    assert EvalConfig(suite, "rafa", "transformers:smollm2", tmp_path, adapter="none").planner_adapter is None
    assert EvalConfig(suite, "rafa", "none", tmp_path).planner_adapter is None  # critic only: nothing to adapt
    assert EvalConfig(suite, "oracle", "transformers:smollm2", tmp_path).planner_adapter is None


def test_a_results_line_that_is_no_episode_record_is_refused_naming_file_and_line(tmp_path):
    from evals.store import ResultsError

    config = EvalConfig(load_suite("smoke"), "oracle", None, tmp_path, num_seeds=1)
    run_suite(config)
    results = tmp_path / RESULTS_FILE
    with results.open("a") as handle:
        handle.write('{"goal": "collect_wood", "success": true}\n')
    with pytest.raises(ResultsError, match=rf"^{results}:4: not an episode record \(missing episode, status\)"):
        run_suite(config, resume=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_in_process_drops_the_episode_in_flight_and_resume_finishes(tmp_path, sig):
    from evals.runner import EvalInterrupted

    config = EvalConfig(load_suite("smoke"), "rafa", "none", tmp_path, num_seeds=2, threads=1)

    def stop_after_first(record, done, total):
        if done == 1:  # the handler raises at once, in the loop that records episodes
            os.kill(os.getpid(), sig)

    # as in a foreground terminal job (a shell's background job would start with the signal ignored)
    previous = signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    try:
        with pytest.raises(EvalInterrupted) as stopped:
            run_suite(config, on_result=stop_after_first)
        assert signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL)  # restored after the run
    finally:
        signal.signal(sig, previous)
    assert (stopped.value.exit_code, stopped.value.saved, stopped.value.total) == (128 + sig, 1, 6)
    recorded = {r["dir"] for r in load_results(tmp_path / RESULTS_FILE)}
    assert {str(p.relative_to(tmp_path)) for p in (tmp_path / "episodes").glob("*/*")} == recorded
    finished = run_suite(config, resume=True)
    assert behaviour(finished) == behaviour(run_suite(dataclasses.replace(config, out=tmp_path / "whole")))
