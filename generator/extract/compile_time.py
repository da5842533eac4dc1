"""Measure how long JAX spends tracing, lowering and compiling (or loading cached programs).

JAX reports each phase through `jax.monitoring` duration events; `CompileTimer` listens to
them while it is open and adds them up, so the extract stage can report compile time apart
from run time without changing how its steps are called.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
