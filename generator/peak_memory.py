"""Peak resident memory (RSS) of the build process, per stage and per extract step.

Read from Linux's /proc/self/status: `VmHWM` is the process's resident high-water mark, monotone
over its life. The kernel can reset it (`echo 5 > /proc/self/clear_refs`), but that also resets
the `ru_maxrss` that `/usr/bin/time -v` and a parent's `wait4` report, so it is never done here.
Instead `PeakRss` gives a block's peak as: the new high-water mark when the block raised it
(exact), else the largest RSS sampled every `INTERVAL` seconds by a light thread during the block
(a lower bound that misses only spikes shorter than the interval, below the process's earlier
peak). Where /proc is missing (not Linux) nothing is recorded (None).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

STATUS = Path("/proc/self/status")
STATM = Path("/proc/self/statm")
INTERVAL = 0.01  # seconds between RSS samples
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def high_water_mark() -> int | None:
    """Return the process's resident high-water mark (VmHWM) in bytes, None where unknown."""
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def resident() -> int | None:
    """Return the process's current RSS in bytes, None where unknown."""
    try:
        return int(STATM.read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


class PeakRss:
    """Context manager measuring the peak RSS of its block: `bytes` after exit (None: unknown)."""

    def __init__(self, interval: float = INTERVAL):
        self.interval = interval
        self.bytes: int | None = None
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_mark: int | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = resident()
            if now is not None:
                self._sampled = max(self._sampled, now)

    def __enter__(self) -> PeakRss:
        self._start_mark = high_water_mark()
        if self._start_mark is not None:
            self._sampled = resident() or 0
            self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        mark = high_water_mark()
        self._sampled = max(self._sampled, resident() or 0)
        raised = mark is not None and mark > self._start_mark
        self.bytes = mark if raised else self._sampled
