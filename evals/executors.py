"""Where the jobs of a run execute: in this process, in a spawn process pool (the default), or on Ray.

Every executor maps a picklable ``fn`` over items and yields ``(item, value)`` in completion order; the
caller (``evals.runner``, ``agents.collect``) alone writes what comes back, so the on-disk store is the
same whatever ran the jobs. ``setup`` runs once in each worker process before its first job (load the
planner once, bound torch threads).

A worker process that dies mid-job (``kill -9``, the OOM killer) costs that job one attempt: it runs
once more, and when its worker dies again the value is a :class:`WorkerLost` instead of a result, and
the run goes on. Ray does the retry itself (``max_retries=1``, per task). A process pool cannot say
which job killed it, so the jobs that had started when it broke are rerun one at a time in a fresh
one-worker pool: a second death there is that job's own, and a bystander finishes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ExecutorKind = Literal["pool", "ray"]
EXECUTORS: tuple[str, ...] = ("pool", "ray")
#: Runs of a job whose worker process died: the first try and one retry.
WORKER_ATTEMPTS = 2
RAY_EXTRA = "pip install 'embodia[ray]'"


class ExecutorError(ValueError):
    """The executor cannot start (Ray absent, no cluster at ``--address``); the message says what to do."""


@dataclass(frozen=True)
class WorkerLost:
    """The value of a job whose worker process died on every attempt."""

    error: str
    attempts: int = WORKER_ATTEMPTS


@dataclass(frozen=True)
class Setup:
    """``fn(*args)`` once per worker process, before its first job."""

    fn: Callable[..., None]
    args: tuple[Any, ...] = ()


def make_executor(kind: str = "pool", workers: int = 1, *, address: str | None = None,
                  threads: int = 0) -> Executor:
    """The executor of ``--executor KIND``; ``threads`` is torch threads per worker (0: cores / workers)."""
    if kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor {kind!r}; choose from {', '.join(EXECUTORS)}")
    if address is not None and kind != "ray":
        raise ExecutorError("--address names a Ray cluster; use it with --executor ray")
    if workers < 1:
        raise ExecutorError(f"workers must be >= 1, got {workers}")
    if kind == "pool" and workers == 1:
        return InlineExecutor(1, threads)  # 0: torch keeps its own default, as `embodia run` does
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    return RayExecutor(workers, threads, address) if kind == "ray" else PoolExecutor(workers, threads)


class Executor:
    """Maps ``fn`` over items on ``workers`` processes; see the module docstring for worker deaths."""

    def __init__(self, workers: int, threads: int) -> None:
        self.workers, self.threads = workers, threads

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], setup: Setup | None = None
            ) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError


class InlineExecutor(Executor):
    """One worker: the jobs run in this process, one after another (no start-up, the easiest to debug)."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], setup: Setup | None = None
            ) -> Iterator[tuple[Any, Any]]:
        if not items:
            return
        bound_threads(self.threads, setup)
        for item in items:
            yield item, fn(item)


def _marked(marks: str, index: int, fn: Callable[[Any], Any], item: Any) -> Any:
    """Runs in a pool worker: leave a mark that job ``index`` started, then run it."""
    Path(marks, str(index)).touch()
    return fn(item)


def bound_threads(threads: int, setup: Setup | None) -> None:
    """Bound torch threads so worker processes do not fight over cores, then run ``setup``.

    Two torch processes spinning two threads each on two cores ran an imagining eval ~10x slower here.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    if setup is not None:
        setup.fn(*setup.args)


def _pool_setup(threads: int, setup: Setup | None, parent: int) -> None:
    die_with_parent(parent)
    bound_threads(threads, setup)


class PoolExecutor(Executor):
    """A ``spawn`` process pool (no torch state is inherited); workers die with this process, even on ``kill -9``."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], setup: Setup | None = None
            ) -> Iterator[tuple[Any, Any]]:
        pending = list(items)
        while pending:
            done: set[int] = set()
            with tempfile.TemporaryDirectory(prefix="embodia-pool-") as marks:
                try:
                    with closing(self._round(fn, pending, setup, marks, self.workers)) as results:
                        for index, value in results:
                            done.add(index)
                            yield pending[index], value
                    return
                except BrokenProcessPool:
                    started = [i for i in range(len(pending)) if i not in done and Path(marks, str(i)).exists()]
                    if not started:  # it broke before any job ran (a failing setup): nothing to retry
                        raise
            for index in started:  # alone, so that a second death is the job's own
                yield pending[index], self._alone(fn, pending[index], setup)
            pending = [job for i, job in enumerate(pending) if i not in done and i not in started]

    def _alone(self, fn: Callable[[Any], Any], item: Any, setup: Setup | None) -> Any:
        """The retry of ``item`` in a fresh one-worker pool: its value, or :class:`WorkerLost`."""
        with tempfile.TemporaryDirectory(prefix="embodia-pool-") as marks:
            try:
                with closing(self._round(fn, [item], setup, marks, 1)) as results:
                    return next(results)[1]
            except BrokenProcessPool as exc:
                return WorkerLost(f"the worker process died twice running this job ({exc})")

    def _round(self, fn: Callable[[Any], Any], items: list[Any], setup: Setup | None, marks: str,
               workers: int) -> Iterator[tuple[int, Any]]:
        """``(index, value)`` as jobs finish; every finished one is yielded before a broken pool raises."""
        with sigint_ignored():  # workers start with Ctrl-C ignored: a half-started one prints no traceback
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_pool_setup,
                                       initargs=(self.threads, setup, os.getpid()))
            futures = {pool.submit(_marked, marks, i, fn, item): i for i, item in enumerate(items)}
        try:
            broken: BrokenProcessPool | None = None
            for future in as_completed(futures):
                try:
                    value = future.result()
                except BrokenProcessPool as exc:  # the others finished or broke too: collect them first
                    broken = exc
                    continue
                yield futures[future], value
            if broken is not None:
                raise broken
        except BaseException:  # a signal, a dead worker or a closed consumer: do not wait for jobs in flight
            terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# --- worker processes of the pool ---
def die_with_parent(parent: int) -> None:
    """Make this worker exit when ``parent`` does, however it ends (even ``kill -9``).

    An orphaned worker (1.3 GB, a full core) kept writing episode folders that a ``--resume`` would then
    share. Linux delivers SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); a watchdog thread that
    polls the parent pid covers other systems and the race of a parent that died before the call. The
    parent owns Ctrl-C: a terminal's SIGINT reaches the whole group, and the parent stops the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while workers are spawned: an ignored signal stays ignored across ``exec``, and Python
    installs its KeyboardInterrupt handler only where SIGINT was not ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def terminate(pool: ProcessPoolExecutor) -> None:
    """Stop every worker now (SIGTERM, then SIGKILL after 5 s) and wait until they are gone.

    ``shutdown`` waits for the jobs in flight; the pool's own ``terminate_workers`` is Python 3.14+,
    so this reads the executor's process table (``_processes``) as that method does.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


# --- Ray ---
_ray_setup_done: object = None


def _ray_call(setup: Setup | None, fn: Callable[[Any], Any], item: Any) -> Any:
    """Runs in a Ray worker process: its setup once (workers are reused across tasks), then the job."""
    global _ray_setup_done
    if setup is not None and _ray_setup_done != setup:
        setup.fn(*setup.args)
        _ray_setup_done = setup
    return fn(item)


def import_ray() -> Any:
    """``ray``, with usage stats off; :class:`ExecutorError` naming the extra when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast with a clear message when nothing listens at ``HOST:PORT`` (Ray itself retries for a minute)."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address!r} is not HOST:PORT (the head node's GCS port, 6379 by default), "
                            "ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(f"no Ray cluster at --address {address} ({exc.strerror or exc}); start one with "
                            "`ray start --head` on that machine, or drop --address for a local runtime") from None


class RayExecutor(Executor):
    """Ray tasks (one CPU each, at most ``workers`` in flight) on a local runtime this run starts and stops,
    or on the cluster at ``address`` (the code and the run folder must be on every node: a shared filesystem)."""

    def __init__(self, workers: int, threads: int, address: str | None = None) -> None:
        super().__init__(workers, threads)
        self.address = address
        self.startup_seconds: float | None = None

    def _init(self) -> tuple[Any, bool]:
        """``(ray, started here)``; an already initialised Ray (a notebook, a test) is used as it is."""
        ray = import_ray()
        if ray.is_initialized():
            return ray, False
        started = time.perf_counter()
        if self.address is not None:
            check_address(self.address)
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level="WARNING")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(f"cannot join the Ray cluster at --address {self.address}: {exc}") from None
        else:  # a bounded local runtime: the workers' CPUs, a small object store (records are small)
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                     object_store_memory=128 * 1024**2)
        self.startup_seconds = time.perf_counter() - started
        return ray, True

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], setup: Setup | None = None
            ) -> Iterator[tuple[Any, Any]]:
        if not items:
            return
        ray, owned = self._init()
        try:
            remote = ray.remote(num_cpus=1, max_retries=WORKER_ATTEMPTS - 1, retry_exceptions=False)(_ray_call)
            setup = Setup(bound_threads, (self.threads, setup))  # once per Ray worker process
            queue: Iterable[tuple[int, Any]] = iter(enumerate(items))
            flying: dict[Any, int] = {}
            try:
                for index, item in queue:
                    flying[remote.remote(setup, fn, item)] = index
                    if len(flying) >= self.workers:
                        break
                while flying:
                    [ref], _ = ray.wait(list(flying), num_returns=1)
                    index = flying.pop(ref)
                    for next_index, item in queue:  # keep ``workers`` jobs in flight
                        flying[remote.remote(setup, fn, item)] = next_index
                        break
                    yield items[index], _ray_value(ray, ref)
            except BaseException:  # a signal or a closed consumer: stop the jobs in flight now
                for ref in flying:
                    ray.cancel(ref, force=True)
                raise
        finally:
            if owned:
                ray.shutdown()


def _ray_value(ray: Any, ref: Any) -> Any:
    """The task's result; :class:`WorkerLost` when its worker died on both attempts; the job's own exception."""
    try:
        return ray.get(ref)
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OwnerDiedError) as exc:
        return WorkerLost(f"the worker process died twice running this job ({type(exc).__name__})")
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None
