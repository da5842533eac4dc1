"""Start the representation analysis's slow jobs while the extraction still runs (`build` only).

The representations page's t-SNE maps and layer probes need only the corpus's pooled vectors
and labels, which exist once the corpus pass has run, while the rest of the extraction
(attributions, gradients) leaves part of the CPU idle. Inside `prefetching()`, the extraction
hands those jobs for the card model to one worker process (`PREFETCH_WORKERS`), which runs them
beside the extraction; the analyze stage then takes each job whose function and exact inputs it
finds here (`job_key`: a SHA-256 of them) instead of running it again, cancels those the worker
has not begun and runs them with every worker. A result is therefore the same bytes whether its
job ran early, late or in the analysis itself; anything not found (another checkpoint's jobs, a
changed input) runs as before.

The worker runs at normal priority: at the lowest one (niceness 19) it was starved whenever
other programs kept the CPU busy, and the analysis then waited minutes for it (measured:
`make site` beside the test suite spent 225 s in the representations analysis).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import pickle
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from generator.analyze.workers import run_jobs, start_worker, worker_count

log = logging.getLogger(__name__)

PREFETCH_WORKERS = 1  # beside the extraction's own threads; the analysis uses every worker


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


class Prefetch:
    """Jobs started early in low-priority workers, found again by their function and inputs."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self.started = 0
        self.taken = 0

    def submit(self, function, jobs: list[tuple]) -> None:
        """Start `function(*job)` for each job not started yet (nothing with one worker)."""
        if worker_count(len(jobs)) < 2:  # MODELATLAS_WORKERS=1 or one CPU: no workers
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                PREFETCH_WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
            )
        for job in jobs:
            key = job_key(function, job)
            if key not in self._futures:
                self._futures[key] = self._pool.submit(function, *job)
                self.started += 1

    def take(self, function, *args) -> Future | None:
        """Return the started job of exactly this function and these inputs (once), or None."""
        future = self._futures.pop(job_key(function, args), None)
        self.taken += future is not None
        return future

    def close(self) -> None:
        """Stop the workers: jobs not started are cancelled, running ones waited for."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()


def results(function, jobs: list[tuple], *, small: bool) -> list:
    """Return `[function(*job) for job in jobs]`: started jobs taken, the rest run now.

    A started job that its worker has not begun is cancelled and runs now with the others, in
    worker processes unless they are `small` (workers.run_jobs). A started job whose worker
    died runs here instead.
    """
    from concurrent.futures.process import BrokenProcessPool

    prefetch = active_prefetch()
    started = [prefetch.take(function, *job) if prefetch else None for job in jobs]
    started = [None if future is None or future.cancel() else future for future in started]
    rest = [job for job, future in zip(jobs, started, strict=True) if future is None]
    if len(rest) < len(jobs):
        log.info(
            "%s: %d of %d begun during the extraction",
            function.__name__,
            len(jobs) - len(rest),
            len(jobs),
        )
    computed = iter(run_jobs(function, rest, small=small))
    values = []
    for job, future in zip(jobs, started, strict=True):
        if future is None:
            values.append(next(computed))
            continue
        try:
            values.append(future.result())
        except BrokenProcessPool:  # its worker died (out of memory?): run it here
            values.append(function(*job))
    return values


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
