"""Measure how long JAX spends tracing, lowering and compiling (or loading cached programs).

JAX reports each phase through `jax.monitoring` duration events; `CompileTimer` listens to
them while it is open and adds them up, so the extract stage can report compile time apart
from run time without changing how its steps are called. A step may time its parts too
(`step_part`, collected by `collecting_parts` around the step).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from generator.peak_memory import PeakRss

# Trace to jaxpr, jaxpr to StableHLO, XLA compile (or persistent-cache read): one per new shape.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@dataclass
class CompileTimer:
    """Context manager adding up JAX compile-phase durations (seconds) while it is open."""

    seconds: float = 0.0
    by_event: dict[str, float] = field(default_factory=dict)

    def _listen(self, event: str, duration: float, **_: object) -> None:
        if event in COMPILE_EVENTS:
            self.seconds += duration
            self.by_event[event] = self.by_event.get(event, 0.0) + duration

    def __enter__(self) -> CompileTimer:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        import jax.monitoring

        jax.monitoring.unregister_event_duration_listener(self._listen)


_PARTS: ContextVar[list[dict] | None] = ContextVar("step_parts", default=None)


@contextmanager
def collecting_parts() -> Iterator[list[dict]]:
    """Collect the `step_part`s timed inside the block (one extract step's parts)."""
    parts: list[dict] = []
    token = _PARTS.set(parts)
    try:
        yield parts
    finally:
        _PARTS.reset(token)


@contextmanager
def measured() -> Iterator[dict]:
    """Measure the block: fills {seconds, compile_seconds, peak_rss_bytes} on exit.

    `peak_rss_bytes` is the block's own peak RSS (`PeakRss`; None where unknown). An extract step
    and a step's part are measured alike.
    """
    record: dict = {}
    started = time.perf_counter()
    with PeakRss() as peak, CompileTimer() as compiling:
        yield record
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["compile_seconds"] = round(compiling.seconds, 3)
    record["peak_rss_bytes"] = peak.bytes


@contextmanager
def step_part(name: str) -> Iterator[None]:
    """Time the block as part `name` of the current step.

    Records {part, seconds, compile_seconds, peak_rss_bytes} (`measured`; the peak left out
    where unknown). Outside `collecting_parts` the block runs untimed. The block must wait for
    its results (e.g. `np.asarray` them): JAX dispatches asynchronously.
    """
    parts = _PARTS.get()
    if parts is None:
        yield
        return
    with measured() as record:
        yield
    parts.append({"part": name, **{k: v for k, v in record.items() if v is not None}})
