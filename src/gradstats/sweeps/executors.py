"""Where a sweep's tasks run: this process, a local Dask cluster, or an existing one.

An executor has two methods: ``map_unordered(fn, tasks)`` yields ``fn(task)`` for every task
in completion order, pulling tasks from the iterable only as it has room for them (so the
caller can claim a task's points just before it starts), and ``close()``. Results come
back to the driver, which writes them; workers never touch the results directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from gradstats.errors import Terminated

T = TypeVar("T")
R = TypeVar("R")

# Times Dask reruns a task whose worker died (``distributed.scheduler.allowed-failures``)
# and times it reruns a task that raised (``retries=``; our tasks catch their own errors).
ALLOWED_WORKER_DEATHS = 3
TASK_RETRIES = 2
# Tasks kept queued per Dask thread so that workers never wait on the driver.
QUEUED_PER_THREAD = 2
# Below this much estimated single-core work a local cluster costs more than it saves:
# starting and stopping one took 5-20 s on a shared 2-core machine (RESULTS_sweeps.md).
LOCAL_CLUSTER_MIN_SECONDS = 30.0
# How long to try reaching an existing scheduler before giving up.
CONNECT_TIMEOUT_SECONDS = 10.0
# How often the driver looks for finished tasks (and for a Ctrl-C) while it waits.
POLL_SECONDS = 0.05
# Module that every local worker process preloads (it ignores Ctrl-C: the driver handles it).
WORKER_PRELOAD = "gradstats.sweeps.worker_init"


class Executor(Protocol):
    """Runs tasks and yields their results as they finish."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T],
                      on_error: Callable[[T, BaseException], R] | None = None) -> Iterator[R]:
        """``fn(task)`` for each task, in completion order; a task that cannot finish (its
        worker keeps dying) yields ``on_error(task, exception)``, or raises without it."""
        ...

    def close(self) -> None:
        """Release workers and connections."""
        ...


class InProcessExecutor:
    """Runs tasks one after another in this process (``--workers 0``; for debugging)."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T],
                      on_error: Callable[[T, BaseException], R] | None = None) -> Iterator[R]:
        for task in tasks:
            try:
                result = fn(task)
            except Exception as err:
                if on_error is None:
                    raise
                result = on_error(task, err)
            yield result

    def close(self) -> None:
        """Nothing to release."""


class DaskExecutor:
    """Runs tasks on a Dask cluster: a local one of ``n_workers`` processes or ``address``.

    Workers run each task with ``torch.set_num_threads(torch_threads)`` (local workers are
    single-threaded processes, so N workers use N cores). A task whose worker dies is rerun
    on another worker (up to ``ALLOWED_WORKER_DEATHS`` times); results are gathered with
    ``as_completed`` and tasks are submitted only as workers have room for them.

    Local workers ignore SIGINT (`worker_init`): Ctrl-C reaches the driver alone, which
    shuts the cluster down, so no worker prints a traceback.
    """

    def __init__(self, n_workers: int | None = None, address: str | None = None,
                 torch_threads: int = 1, connect_timeout: float | None = None) -> None:
        import dask
        from distributed import Client, LocalCluster

        from gradstats.sweeps.worker_init import quiet_shutdown

        quiet_shutdown()  # the driver's client, collected after a Ctrl-C, likewise

        self.cluster = None
        if address is None:
            # read by the scheduler when it starts (an external cluster keeps its own setting)
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_WORKER_DEATHS}), \
                    sigint_ignored_by_children():
                self.cluster = LocalCluster(
                    n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                    processes=True, dashboard_address=":0", scheduler_port=0,
                    silence_logs=logging.CRITICAL, env=single_thread_env(),
                    preload=[WORKER_PRELOAD])
            self.client = Client(self.cluster)
        else:
            self.client = Client(address, timeout=connect_timeout or CONNECT_TIMEOUT_SECONDS)
        self.torch_threads = torch_threads

    def n_threads(self) -> int:
        """Dask threads on the cluster now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T],
                      on_error: Callable[[T, BaseException], R] | None = None) -> Iterator[R]:
        from distributed import as_completed

        pending = iter(tasks)
        running = as_completed()
        task_of = {}

        def submit_more() -> None:
            room = QUEUED_PER_THREAD * self.n_threads()
            while running.count() < room:
                task = next(pending, None)
                if task is None:
                    return
                future = self.client.submit(call_with_torch_threads, fn, self.torch_threads,
                                            task, pure=False, retries=TASK_RETRIES)
                task_of[future.key] = task
                running.add(future)

        with sigint_deferred() as interrupted:
            submit_more()
            while not running.is_empty():
                if not running.has_ready():  # Ctrl-C is raised here, never inside distributed
                    if interrupted():
                        raise interrupted.error()
                    time.sleep(POLL_SECONDS)
                    continue
                future = next(running)
                task = task_of.pop(future.key)
                try:
                    result = future.result()
                except Exception as err:  # e.g. KilledWorker: the task took down every worker
                    if on_error is None:
                        raise
                    result = on_error(task, err)
                future.release()
                submit_more()
                yield result

    def close(self) -> None:
        """Disconnect; shut the local cluster down (an external one is left running)."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _Deferred:
    """``interrupted()``: whether Ctrl-C or SIGTERM came; ``error()``: what to raise for it."""

    def __init__(self) -> None:
        self.flag = threading.Event()
        self.signum = signal.SIGINT

    def __call__(self) -> bool:
        return self.flag.is_set()

    def error(self) -> KeyboardInterrupt:
        return Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()

    def handler(self, signum, frame) -> None:
        if self.flag.is_set():
            raise self.error()
        self.signum = signum
        self.flag.set()


@contextlib.contextmanager
def sigint_deferred() -> Iterator[_Deferred]:
    """Within the block, a first Ctrl-C (or SIGTERM) only sets a flag (yields
    ``interrupted``, true once it came), so that the caller raises ``interrupted.error()``
    (KeyboardInterrupt, or `Terminated`) where it is safe to: not inside distributed's client
    machinery, which a KeyboardInterrupt can leave half-closed (it then prints a traceback
    when collected). A second signal raises at once. Outside the main thread, nothing
    changes."""
    deferred = _Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield deferred
        return
    previous = signal.signal(signal.SIGINT, deferred.handler)
    previous_term = signal.signal(signal.SIGTERM, deferred.handler)
    try:
        yield deferred
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


@contextlib.contextmanager
def sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT ignored while the block starts processes, which inherit that (a Python child
    then installs no KeyboardInterrupt handler); restored afterwards. A Ctrl-C in the block
    is raised when it ends. Outside the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def call_with_torch_threads(fn: Callable[[T], R], n_threads: int, task: T) -> R:
    """``fn(task)`` with torch limited to ``n_threads`` threads (runs on the worker)."""
    import torch

    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    return fn(task)


def single_thread_env() -> dict[str, str]:
    """Environment for local worker processes: one BLAS/OpenMP thread each."""
    return {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def make_executor(workers: int, scheduler: str | None = None, n_tasks: int | None = None,
                  work_seconds: float | None = None) -> Executor:
    """The executor for ``--workers``/``--scheduler``.

    In-process when ``workers`` is 0, or when a local cluster would only add start-up
    time: fewer than two tasks, or less than ``LOCAL_CLUSTER_MIN_SECONDS`` of estimated work.
    """
    if scheduler is not None:
        return DaskExecutor(address=scheduler)
    too_small = (n_tasks is not None and n_tasks < 2) or (
        work_seconds is not None and work_seconds < LOCAL_CLUSTER_MIN_SECONDS)
    if workers == 0 or too_small:
        return InProcessExecutor()
    return DaskExecutor(n_workers=workers if n_tasks is None else min(workers, n_tasks))
