"""Faults a machine or a user causes during `embodia eval`, on real processes, the real env and real suites.

Each test runs one scenario of ``evals.faults`` (the benchmark repeats them for the README's
Reliability table) and asserts what a user must be able to count on: no crash, no traceback, nothing
lost or duplicated, no process left running, the same results as an uninterrupted run.
"""

import random
import signal

import pytest

from evals.faults import BAD_SUITES, bad_suite, env_fault, interrupt_and_resume, reference_records
from evals.store import RESULTS_FILE, load_results


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The suite's uninterrupted results, which every interrupted-then-resumed run must equal."""
    return reference_records(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_mid_eval_then_resume_loses_duplicates_and_leaves_nothing(tmp_path, reference, sig):
    outcome = interrupt_and_resume(tmp_path, sig, reference)
    assert not outcome.crashed, outcome.detail
    assert 1 <= outcome.saved_when_stopped < len(reference), f"the signal must land mid-suite: {outcome.detail}"
    assert outcome.left_behind == 0, "a worker or the resource tracker outlived the stopped eval"
    assert not outcome.traceback_shown
    assert (outcome.lost, outcome.duplicated) == (0, 0)
    assert outcome.identical, "the resumed run differs from an uninterrupted one"


def test_a_worker_killed_mid_eval_costs_its_episode_one_retry_and_the_run_finishes(tmp_path, reference):
    outcome = interrupt_and_resume(tmp_path, signal.SIGKILL, reference, worker=True)
    assert outcome.saved_when_stopped == len(reference), f"the run must finish by itself: {outcome.detail}"
    assert outcome.clean, outcome  # exit 0, no traceback, the same records as an uninterrupted run


def test_sigterm_drops_the_episodes_in_flight_and_prints_the_exact_resume_command(tmp_path, reference):
    seen = {}

    def stopped(out, printed):
        seen["recorded"] = {r["dir"] for r in load_results(out / RESULTS_FILE)}
        seen["folders"] = {str(p.relative_to(out)) for p in (out / "episodes").glob("*/*")}
        seen["printed"] = printed

    outcome = interrupt_and_resume(tmp_path, signal.SIGTERM, reference, on_stopped=stopped)
    assert outcome.clean, outcome
    assert seen["folders"] == seen["recorded"], "a half-written episode folder survived the stop"
    command = f"embodia eval {tmp_path / 'suite.yaml'} --agent rafa --llm none --threads 1 --out {tmp_path / 'run'} " \
              "--workers 2 --resume"
    assert command in " ".join(seen["printed"].split()), seen["printed"]


@pytest.mark.parametrize("seed", [0, 1])
def test_an_env_exception_at_a_random_step_is_an_error_record_and_the_run_goes_on(tmp_path, seed):
    outcome = env_fault(tmp_path, random.Random(seed))
    assert outcome.clean, outcome
    assert outcome.detail.split(": ")[1].startswith("error"), outcome.detail


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_a_bad_suite_file_exits_2_with_one_line_and_no_traceback(tmp_path, case):
    outcome = bad_suite(tmp_path, case)
    assert not outcome.traceback_shown, outcome.detail
    assert not outcome.crashed, outcome.detail
