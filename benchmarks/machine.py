"""Describe the machine and the software a benchmark ran on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "numpy",
    "torch",
    "transformers",
    "scikit-learn",
    "matplotlib",
    "vl-convert-python",
    "playwright",
)


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    """Return total RAM in GiB from /proc/meminfo (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def usable_cores() -> int:
    """Return the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def versions() -> dict[str, str]:
    """Return installed versions of the packages that matter for the numbers."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def blas_threads() -> list[str]:
    """Describe numpy's BLAS / OpenMP thread pools (threadpoolctl), one line each."""
    try:
        import numpy  # noqa: F401  (loads its BLAS so threadpoolctl sees it)
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed"]
    return [
        f"{i.get('internal_api')} {i.get('version', '')} ({i.get('architecture') or '-'}): "
        f"{i.get('num_threads')} threads"
        for i in threadpool_info()
    ]


def describe(threads: int) -> dict:
    """Return the machine description recorded with every result file."""
    torch_threads = "PyTorch not installed"
    try:
        import torch

        torch_threads = str(torch.get_num_threads())
    except ImportError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": round(memory_gib(), 1),
        "os": platform.platform(),
        "versions": versions(),
        "threads": {
            "requested": threads,
            "XLA CPU intra-op pool": f"{usable_cores()} (one per usable core; JAX has no knob)",
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "(unset)"),
            "torch.get_num_threads()": torch_threads,
            "numpy BLAS": "; ".join(blas_threads()),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        },
        "load_average_start": os.getloadavg(),
    }
