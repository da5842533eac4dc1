"""Start the analysis's slow jobs while the extraction still runs (`build` only).

The representations page's t-SNE maps and layer probes need only the corpus's pooled vectors
and labels, which exist once the corpus pass has run, and the weights page's token-embedding
maps (the longest single t-SNE fit) only the embedding sample, stored when the corpus is
tokenised, while the rest of the extraction (compilation, attributions, gradients) leaves part
of the CPU idle. Inside `prefetching()`, the extraction
hands those jobs for the card model to worker processes at the lowest CPU priority (niceness
19), which take only the CPU the extraction's own threads leave. The analyze stage then takes
each job whose function and exact inputs it finds here (`job_key`: a SHA-256 of them) and that
has finished; every other job (not begun, still running, or not found: another checkpoint's,
a changed input) runs then, at normal priority, with every worker. A result is therefore the
same bytes whether its job ran early or in the analysis itself.

Only finished jobs are taken because a low-priority worker is starved while other programs
keep the CPU busy: waiting for its running jobs, `make site` beside the test suite spent 225 s
in the representations analysis. At normal priority instead, the worker slowed the extraction's
threads (bert-base: 378.7 CPU s against 349.3 at niceness 19).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from generator.analyze.workers import run_jobs, start_worker, worker_count

log = logging.getLogger(__name__)

NICENESS = 19
POOL_JOBS = 1 << 30  # size the pool as for any number of jobs: a worker per CPU


def job_key(function, args: tuple) -> str:
    """Return the SHA-256 of a job: its function's name and its arguments' values.

    Float arrays count as their float64 values (a float32 array and its exact float64 widening,
    contiguous or not, are the same job); anything else by its pickle.
    """
    digest = hashlib.sha256(f"{function.__module__}.{function.__qualname__}".encode())
    for arg in args:
        if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
            arg = np.ascontiguousarray(arg, dtype=np.float64)
            digest.update(b"f8" + repr(arg.shape).encode() + arg.tobytes())
        else:
            digest.update(b"p" + pickle.dumps(arg, protocol=4))
    return digest.hexdigest()


def _start_low_priority_worker() -> None:
    """A prefetch worker: the lowest CPU priority, Ctrl-C left to the parent (workers.py)."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(NICENESS)
    start_worker()


class Prefetch:
    """Jobs started early in low-priority workers, found again by their function and inputs."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self.started = 0
        self.taken = 0

    def submit(self, function, jobs: list[tuple]) -> None:
        """Start `function(*job)` for each job not started yet, in submission order (nothing with
        one worker). The pool has a worker per CPU; they start as jobs arrive."""
        if not jobs or worker_count(2) < 2:  # MODELATLAS_WORKERS=1 or one CPU: no workers
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                worker_count(POOL_JOBS),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_low_priority_worker,
            )
        for job in jobs:
            key = job_key(function, job)
            if key not in self._futures:
                self._futures[key] = self._pool.submit(function, *job)
                self.started += 1

    def take(self, function, *args) -> Future | None:
        """Return the finished job of exactly this function and these inputs (once), or None.

        A job not finished is dropped (cancelled when not begun): the caller runs it itself.
        """
        future = self._futures.pop(job_key(function, args), None)
        if future is None or not future.done() or future.cancelled() or future.exception():
            if future is not None:
                future.cancel()
            return None
        self.taken += 1
        return future

    def wait(self) -> None:
        """Wait until every job started and not taken has finished."""
        for future in list(self._futures.values()):
            with contextlib.suppress(Exception):
                future.result()

    def close(self) -> None:
        """Stop the workers at once: jobs not begun are cancelled, running ones ended."""
        if self._pool is not None:
            workers = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:  # a job still running at niceness 19 is not needed
                with contextlib.suppress(OSError, ValueError):
                    process.terminate()
            for process in workers:
                with contextlib.suppress(OSError, ValueError, AssertionError):
                    process.join(timeout=5)
            self._pool = None
        self._futures.clear()


class TakenJob:
    """A finished early job in `BackgroundJob`'s shape: `result()`, and a context manager."""

    def __init__(self, future: Future):
        self._future = future

    def result(self):
        """Return the job's result."""
        return self._future.result()

    def __enter__(self) -> TakenJob:
        return self

    def __exit__(self, *exc) -> None:
        pass


def results(function, jobs: list[tuple], *, small: bool) -> list:
    """Return `[function(*job) for job in jobs]`: finished early jobs taken, the rest run now,
    in worker processes unless they are `small` (workers.run_jobs)."""
    prefetch = active_prefetch()
    early = [prefetch.take(function, *job) if prefetch else None for job in jobs]
    rest = [job for job, future in zip(jobs, early, strict=True) if future is None]
    if len(rest) < len(jobs):
        log.info(
            "%s: %d of %d done during the extraction",
            function.__name__,
            len(jobs) - len(rest),
            len(jobs),
        )
    computed = iter(run_jobs(function, rest, small=small))
    return [next(computed) if future is None else future.result() for future in early]


_ACTIVE: list[Prefetch] = []


def active_prefetch() -> Prefetch | None:
    """Return the prefetch of the enclosing `prefetching()`, or None outside one."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextlib.contextmanager
def prefetching() -> Iterator[Prefetch]:
    """Let the extraction start jobs that the analysis takes, until the block ends."""
    prefetch = Prefetch()
    _ACTIVE.append(prefetch)
    try:
        yield prefetch
    finally:
        _ACTIVE.remove(prefetch)
        prefetch.close()
