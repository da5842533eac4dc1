"""Start the analysis's slow jobs while the extraction still runs (`build` only).

The representations page's t-SNE maps and layer probes need only the corpus's pooled vectors
and labels, which exist once the corpus pass has run, and the weights page's token-embedding
maps (the longest single t-SNE fit) only the embedding sample, stored when the corpus is
tokenised, while the rest of the extraction (compilation, attributions, gradients) leaves part
of the CPU idle. Inside `prefetching()`, the extraction
hands those jobs for the card model to worker processes at the lowest CPU priority (niceness
19), which take only the CPU the extraction's own threads leave. The analyze stage then takes
each job whose function and exact inputs it finds here (`job_key`: a SHA-256 of them) and that
has finished or is running; every other job (not begun, or not found: another checkpoint's,
a changed input) runs then, at normal priority, with every worker. A result is therefore the
same bytes whether its job ran early or in the analysis itself.

A job still running is waited for after the analysis's own jobs, at most `RUNNING_GRACE`
seconds, and then run again: a low-priority worker is starved while other programs keep the
CPU busy (waiting for its running jobs without a limit, `make site` beside the test suite spent
225 s in the representations analysis), but on an idle machine it finishes its job at full
speed once the analysis's own workers are done, and dropping it threw away the CPU it had
used (the default card: 3 of its 14 t-SNE fits and the token-embedding map were running when
the extraction ended). At normal priority instead, the worker slowed the extraction's threads
(bert-base: 378.7 CPU s against 349.3 at niceness 19).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait

import numpy as np

from generator.analyze.workers import run_jobs, start_worker, worker_count

log = logging.getLogger(__name__)

NICENESS = 19
RUNNING_GRACE = 10.0  # seconds the analysis waits for the jobs still running early
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
        """Return the job of exactly this function and these inputs (once) when it has finished
        without an error or is running, else None: the caller runs it itself (a job not begun
        is cancelled)."""
        future = self._futures.pop(job_key(function, args), None)
        if future is None or not (future.done() or future.running()):
            if future is not None:
                future.cancel()
            return None
        if future.done() and (future.cancelled() or future.exception()):
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


def finished(futures: list[Future | None]) -> list[bool]:
    """Wait up to `RUNNING_GRACE` seconds for the futures not done yet; return which ended
    without an error (None: no future)."""
    wait([future for future in futures if future is not None], timeout=RUNNING_GRACE)
    return [
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
        for future in futures
    ]


class TakenJob:
    """An early job in `BackgroundJob`'s shape: `result()`, and a context manager. A job still
    running is waited for at most `RUNNING_GRACE` seconds, then run in this process."""

    def __init__(self, future: Future, function, *args):
        self._future = future
        self._function, self._args = function, args

    def result(self):
        """Return the job's result."""
        if finished([self._future])[0]:
            return self._future.result()
        return self._function(*self._args)

    def __enter__(self) -> TakenJob:
        return self

    def __exit__(self, *exc) -> None:
        pass


def results(function, jobs: list[tuple], *, small: bool) -> list:
    """Return `[function(*job) for job in jobs]`: early jobs taken, the rest run now, in worker
    processes unless they are `small` (workers.run_jobs); then the early jobs still running
    are waited for (`finished`), and those that did not finish run again."""
    prefetch = active_prefetch()
    early = [prefetch.take(function, *job) if prefetch else None for job in jobs]
    computed = run_some(function, jobs, [i for i, f in enumerate(early) if f is None], small)
    done = finished(early)
    late = [i for i, future in enumerate(early) if future is not None and not done[i]]
    computed |= run_some(function, jobs, late, small)
    if len(computed) < len(jobs):
        log.info(
            "%s: %d of %d made by the workers started during the extraction",
            function.__name__,
            len(jobs) - len(computed),
            len(jobs),
        )
    return [computed[i] if i in computed else early[i].result() for i in range(len(jobs))]


def run_some(function, jobs: list[tuple], which: list[int], small: bool) -> dict[int, object]:
    """Run the jobs at the indices `which` now (workers.run_jobs) -> index -> result."""
    made = run_jobs(function, [jobs[i] for i in which], small=small)
    return dict(zip(which, made, strict=True))


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
