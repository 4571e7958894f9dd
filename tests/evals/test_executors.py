"""Executors on real processes: a spawn pool and a local Ray runtime; worker deaths, bad input, same records."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embodia.cli import app
from evals.executors import WORKER_ATTEMPTS, ExecutorError, WorkerLost, make_executor
from evals.runner import TIMING_FIELDS
from evals.store import RESULTS_FILE, load_results

SUITE = """\
name: tiny-executors
env: crafter
goals: [collect_wood, place_table]
seeds: {dev: [0, 1, 2]}
max_steps: 60
"""


def die_or_square(job: tuple[str, int, str]) -> int:
    """A job that kills its own worker process: ``always``, ``once`` (a mark file remembers), or never."""
    mode, value, marks = job
    mark = Path(marks, f"{mode}-{value}")
    if mode == "always" or (mode == "once" and not mark.exists()):
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value * value


def _jobs(tmp_path: Path) -> list[tuple[str, int, str]]:
    return [("never", 2, str(tmp_path)), ("once", 3, str(tmp_path)), ("always", 4, str(tmp_path)),
            ("never", 5, str(tmp_path))]


def _check_deaths(results: dict[int, object]) -> None:
    assert results[2] == 4 and results[5] == 25, "bystanders of a dying worker must finish"
    assert results[3] == 9, "a job whose worker died once is retried and succeeds"
    assert isinstance(results[4], WorkerLost) and results[4].attempts == WORKER_ATTEMPTS, results[4]


def test_the_pool_retries_a_job_whose_worker_died_once_and_gives_up_after_the_second_death(tmp_path):
    executor = make_executor("pool", 2, threads=1)
    results = {job[1]: value for job, value in executor.map(die_or_square, _jobs(tmp_path))}
    _check_deaths(results)


@pytest.fixture
def ray_runtime():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'embodia[ray]'")
    yield ray
    if ray.is_initialized():
        ray.shutdown()


def test_ray_retries_a_job_whose_worker_died_once_and_gives_up_after_the_second_death(tmp_path, ray_runtime):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers need not import the tests
    executor = make_executor("ray", 2, threads=1)
    results = {job[1]: value for job, value in executor.map(die_or_square, _jobs(tmp_path))}
    _check_deaths(results)
    assert not ray_runtime.is_initialized(), "a runtime the executor started is shut down after the run"


def _eval(tmp_path: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    command = [sys.executable, "-m", "embodia", "eval", str(suite), "--agent", "oracle", "--threads", "1",
               "--out", str(tmp_path / out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _behaviour(folder: Path) -> dict[str, dict]:
    return {r["episode"]: {k: v for k, v in r.items() if k not in TIMING_FIELDS}
            for r in load_results(folder / RESULTS_FILE)}


@pytest.mark.slow
def test_ray_and_the_pool_write_the_same_records(tmp_path, ray_runtime):
    pool = _eval(tmp_path, "pool", "--workers", "2")
    ray = _eval(tmp_path, "ray", "--workers", "2", "--executor", "ray")
    assert pool.returncode == ray.returncode == 0, pool.stderr + ray.stderr
    assert _behaviour(tmp_path / "ray") == _behaviour(tmp_path / "pool")
    assert len(_behaviour(tmp_path / "ray")) == 6
    assert json.loads((tmp_path / "ray" / "results.json").read_text())["overall"]["episodes"] == 6


def test_an_address_where_no_cluster_listens_is_a_clear_error(tmp_path, ray_runtime):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = CliRunner().invoke(app, ["eval", "smoke", "--agent", "oracle", "--executor", "ray",
                                      "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"no Ray cluster at --address 127.0.0.1:{port}" in text and "ray start --head" in text
    assert time.monotonic() - started < 30
    assert not (tmp_path / "run" / RESULTS_FILE).exists()


def test_an_address_without_ray_or_an_unknown_executor_is_refused(tmp_path):
    for args, message in ((["--address", "127.0.0.1:6379"], "use it with --executor ray"),
                          (["--executor", "dask"], "unknown executor 'dask'; choose from pool, ray")):
        result = CliRunner().invoke(app, ["eval", "smoke", "--agent", "oracle", *args, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_without_ray_installed_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    with pytest.raises(ExecutorError, match=r"pip install 'embodia\[ray\]'"):
        list(make_executor("ray", 1).map(abs, [-1]))
    result = CliRunner().invoke(app, ["eval", "smoke", "--agent", "oracle", "--executor", "ray",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "embodia[ray]" in result.output, result.output


@pytest.mark.slow
def test_ray_run_killed_with_kill_9_resumes_without_losing_or_duplicating(tmp_path, ray_runtime):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "embodia", "eval", str(suite), "--agent", "random", "--threads", "1",
               "--workers", "2", "--executor", "ray", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone: Ray's own processes must notice and go
    proc.wait()
    before = load_results(results)
    assert 2 <= len(before) < 6, "the kill must land mid-suite"
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = load_results(results)
    keys = [r["episode"] for r in after]
    assert len(keys) == len(set(keys)) == 6
    assert after[: len(before)] == before


@pytest.mark.parametrize("executor", ["pool", "ray"])
def test_parallel_world_model_collection_writes_the_sequential_dataset(tmp_path, executor):
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'embodia[ray]'")
    import pyarrow.parquet as pq

    args = ["collect", "--for", "world-model", "--episodes", "12", "--steps", "20"]
    sequential = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "one")])
    parallel = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "two"), "--workers", "2",
                                        "--executor", executor])
    assert sequential.exit_code == parallel.exit_code == 0, sequential.output + parallel.output
    shards = sorted(p.name for p in (tmp_path / "one" / "data").glob("*.parquet"))
    assert shards == sorted(p.name for p in (tmp_path / "two" / "data").glob("*.parquet")) and len(shards) == 2
    for name in shards:
        assert pq.read_table(tmp_path / "one" / "data" / name).equals(pq.read_table(tmp_path / "two" / "data" / name))
    assert (tmp_path / "two" / "README.md").is_file()


def test_parallel_collection_of_policy_datasets_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["collect", "--workers", "2", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "world-model only" in " ".join(result.output.split()), result.output
