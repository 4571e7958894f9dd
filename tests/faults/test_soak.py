"""The soak, small: many eval episodes and chat turns with memory, file descriptors and processes flat.

The full size (500 episodes, 1,000 turns) is `python -m evals.bench_reliability`; these are slow-marked
because even the small size takes a minute on a shared 2-core machine.
"""

import pytest

from evals.soak import soak_chat, soak_eval

#: Growth allowed from the start (after warm-up) to the end: allocator noise, not a leak per episode or turn.
RSS_GROWTH_MB = 50


@pytest.mark.slow
def test_eval_soak_keeps_rss_fds_and_processes_flat(tmp_path):
    result = soak_eval(tmp_path, episodes=100)
    assert (result["episodes"], result["errors"], result["exit"], result["left_behind"]) == (100, 0, 0, 0), result
    parent_start, parent_end, _ = result["parent_rss_mb"]
    worker_start, worker_end, _ = result["worker_rss_mb"]
    assert parent_end - parent_start < RSS_GROWTH_MB and worker_end - worker_start < RSS_GROWTH_MB, result
    assert result["parent_fds"][1] <= result["parent_fds"][0] + 2, result  # no descriptor per episode
    assert result["worker_fds"][1] <= result["worker_fds"][0] + 2, result


@pytest.mark.slow
def test_chat_soak_keeps_rss_and_fds_flat(tmp_path):
    result = soak_chat(tmp_path, turns=200)
    start, end = result["rss_mb"]
    assert end - start < RSS_GROWTH_MB, result
    assert result["fds"][1] <= result["fds"][0] + 2, result
