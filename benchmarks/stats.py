"""Timing helpers: alternate the contenders of a comparison, summarise with median and range."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Samples:
    """Repeated measurements of one quantity (seconds, bytes, ...)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of the samples."""
        return float(statistics.median(self.values))

    @property
    def low(self) -> float:
        """Smallest sample."""
        return float(min(self.values))

    @property
    def high(self) -> float:
        """Largest sample."""
        return float(max(self.values))

    def scaled(self, factor: float) -> Samples:
        """Return every sample multiplied by `factor` (e.g. seconds -> tokens/s via 1/x)."""
        return Samples(tuple(v * factor for v in self.values))

    def inverse(self, numerator: float) -> Samples:
        """Return numerator / sample for every sample (a time becomes a rate)."""
        return Samples(tuple(numerator / v for v in self.values))

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """Format as 'median (min–max) unit'."""
        unit = f" {unit}" if unit else ""
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f}){unit}"


def time_call(fn: Callable[[], object]) -> float:
    """Return the wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    contenders: dict[str, Callable[[], object]], reps: int, measure=time_call
) -> dict[str, Samples]:
    """Measure each contender `reps` times, interleaved (A B, B A, A B, ...) so drift and
    other load on the machine hit every contender alike; return samples per name."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(float(measure(contenders[name])))
    return {name: Samples(tuple(values)) for name, values in samples.items()}
