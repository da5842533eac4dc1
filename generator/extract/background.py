"""Run one extract step's CPU work in a thread beside the JAX steps, at a lower CPU priority.

The weight statistics (numpy and LAPACK, one core) need nothing the forward passes make, and
the forward passes leave part of the CPU idle (their compiles and small programs): measured on
a bert-base build on 2 cores, the steps after the weights kept 1.6-1.8 cores busy. The thread
takes that idle share first: its niceness is raised by NICENESS (Linux sets niceness per
thread), so the forward passes' threads keep their CPU while both want it. The result is
collected later by the main thread, which also writes it: the computation is the same
function on the same inputs either way, so the artifacts are the same bytes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

NICENESS = 10  # added to the thread's niceness: it yields to the forward passes


def lower_thread_priority(niceness: int = NICENESS) -> None:
    """Raise the calling thread's niceness by `niceness` (Linux; elsewhere nothing happens)."""
    try:
        native = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, native)
        os.setpriority(os.PRIO_PROCESS, native, min(19, current + niceness))
    except (AttributeError, OSError):  # no per-thread priority here: run at the same one
        pass


class BackgroundStep:
    """`function(*args)` started at once in a daemon thread; `result()` waits for it.

    Records the thread's wall-clock `seconds` and its own CPU `cpu_seconds`. An exception the
    function raised is raised again by `result()`. A build that fails before collecting leaves
    the thread to finish on its own (a daemon thread never keeps the process alive).
    """

    def __init__(self, name: str, function: Callable, *args, niceness: int = NICENESS):
        self.name = name
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._value = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(function, args, niceness), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, function: Callable, args: tuple, niceness: int) -> None:
        lower_thread_priority(niceness)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            self._value = function(*args)
        except BaseException as error:  # handed to the main thread by result()
            self._error = error
        finally:
            self.seconds = time.perf_counter() - started
            self.cpu_seconds = time.thread_time() - cpu

    background = True

    def done(self) -> bool:
        """Tell whether the function has returned (or raised)."""
        return not self._thread.is_alive()

    def result(self):
        """Wait for the function; return its value or raise its exception."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class ForegroundStep:
    """`function(*args)` run at once in the calling thread, with BackgroundStep's `result()`:
    for a step that has nothing to run beside (the weights of a build without a corpus)."""

    background = False

    def __init__(self, name: str, function: Callable, *args):
        self.name = name
        self._value = function(*args)

    def done(self) -> bool:
        """Tell whether the function has returned: always, it ran in the constructor."""
        return True

    def result(self):
        """Return the function's value."""
        return self._value
