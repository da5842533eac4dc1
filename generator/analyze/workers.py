"""Run independent CPU-bound jobs in worker processes, in order, with the serial results.

Workers are started with "spawn" (never "fork": the parent may hold JAX and its threads).
They ignore Ctrl-C, which the parent handles: it cancels the pending jobs and waits for the
running ones, so no worker outlives the call; a worker whose parent is killed exits at once.
A job's exception is raised again in the parent with its type and message.
`MODELATLAS_WORKERS` sets the number of workers (1: in-process, no pool).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from generator.errors import AtlasError

WORKERS_ENV = "MODELATLAS_WORKERS"


def available_cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(jobs: int, small: bool = False) -> int:
    """Return how many workers to run `jobs` jobs with (1: in-process).

    `MODELATLAS_WORKERS` wins when set; otherwise one worker per CPU, or in-process when the
    jobs are `small` (not worth the second or so it takes to start workers).
    """
    setting = os.environ.get(WORKERS_ENV, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise AtlasError(f"{WORKERS_ENV} must be a positive integer, not {setting!r}")
        wanted = int(setting)
    else:
        wanted = 1 if small else available_cpus()
    return max(1, min(wanted, jobs))


def worker_died() -> AtlasError:
    """The one-line error for a worker process that ended without a result."""
    return AtlasError(
        f"a worker process stopped unexpectedly (out of memory?); set {WORKERS_ENV}=1"
        " to run in one process"
    )


def run_jobs(function: Callable, jobs: Sequence[tuple], small: bool = False) -> list:
    """Return `[function(*job) for job in jobs]`, computed by worker processes when worthwhile.

    Args:
        function: a module-level function (workers import it by name).
        jobs: the positional arguments of each call (pickled to the workers).
        small: the jobs are too quick to be worth starting workers for.

    Returns:
        The results in the order of `jobs`.
    """
    count = worker_count(len(jobs), small)
    if count == 1:
        return [function(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(count, mp_context=context, initializer=start_worker) as pool:
        try:
            futures = [pool.submit(function, *job) for job in jobs]
            return [future.result() for future in futures]
        except BaseException as error:
            pool.shutdown(wait=True, cancel_futures=True)  # waits for the running jobs only
            if isinstance(error, BrokenProcessPool):
                raise worker_died() from error
            raise


class BackgroundJob:
    """One call started at once in a worker process, collected later with `result()`.

    With one worker allowed (`MODELATLAS_WORKERS=1` or one CPU), or for a `small` call (not
    worth the second it takes to start a worker) while `MODELATLAS_WORKERS` is unset, the call
    runs in this process when `result()` is first asked for. Use it as a context manager: leaving stops the worker.
    """

    def __init__(self, function: Callable, *args, small: bool = False):
        self._function, self._args = function, args
        self._pool = None
        self._future = None
        if worker_count(2, small) > 1:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=start_worker)
            self._future = self._pool.submit(function, *args)

    def result(self):
        """Return the call's result (waiting for the worker), raising what the call raised."""
        if self._future is None:
            return self._function(*self._args)
        try:
            return self._future.result()
        except BrokenProcessPool as error:
            raise worker_died() from error

    def close(self) -> None:
        """Stop the worker (a call still running is waited for, a pending one cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BackgroundJob:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_worker() -> None:
    """Leave Ctrl-C to the parent (which stops the pool); exit when the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_after, args=(parent,), daemon=True).start()


def _exit_after(parent) -> None:
    """Wait for the parent process to end, then end this one."""
    parent.join()
    os._exit(1)
