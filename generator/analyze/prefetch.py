"""Fit the representation maps' t-SNE while the extraction still runs (`build` only).

The maps of the representations page need only the corpus's pooled vectors, which exist once
the corpus pass has run, while the rest of the extraction (attributions, gradients) leaves part
of the CPU idle. Inside `prefetching()`, the extraction hands the card model's per-layer fits
to worker processes at the lowest CPU priority (niceness 19: they take only what the build's
own threads leave); the analyze stage then takes each fit whose input it finds here instead of
running it again. A fit is found by the SHA-256 of its exact input (the vectors and the PCA
coordinates it starts from, as the analysis computes them), so a map is the same bytes whether
it was fitted early, late or in the analysis itself; anything not found (another checkpoint's
fits, a changed input) is fitted as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from generator.analyze.workers import start_worker, worker_count

NICENESS = 19


def fit_key(x: np.ndarray, init: np.ndarray) -> str:
    """Return the SHA-256 of one fit's input: the vectors and the coordinates it starts from."""
    digest = hashlib.sha256()
    for array in (x, init):
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _start_low_priority_worker() -> None:
    """A prefetch worker: the lowest CPU priority, Ctrl-C left to the parent (workers.py)."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(NICENESS)
    start_worker()


class FitPrefetch:
    """t-SNE fits started early in low-priority workers, found again by their input."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future] = {}
        self.started = 0
        self.taken = 0

    def submit(self, function, jobs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Start `function(x, init)` for each job not started yet (nothing with one worker)."""
        count = worker_count(len(jobs))
        if count < 2 and self._pool is None:  # MODELATLAS_WORKERS=1 or one CPU: no workers
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_low_priority_worker,
            )
        for x, init in jobs:
            key = fit_key(x, init)
            if key not in self._futures:
                self._futures[key] = self._pool.submit(function, x, init)
                self.started += 1

    def take(self, x: np.ndarray, init: np.ndarray) -> Future | None:
        """Return the started fit of exactly this input (once), or None."""
        future = self._futures.pop(fit_key(x, init), None)
        self.taken += future is not None
        return future

    def close(self) -> None:
        """Stop the workers: fits not started are cancelled, running ones waited for."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()


_ACTIVE: list[FitPrefetch] = []


def active_prefetch() -> FitPrefetch | None:
    """Return the prefetch of the enclosing `prefetching()`, or None outside one."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextlib.contextmanager
def prefetching() -> Iterator[FitPrefetch]:
    """Let the extraction start fits that the analysis takes, until the block ends."""
    prefetch = FitPrefetch()
    _ACTIVE.append(prefetch)
    try:
        yield prefetch
    finally:
        _ACTIVE.remove(prefetch)
        prefetch.close()
