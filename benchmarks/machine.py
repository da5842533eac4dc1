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


# The widest vector instructions first: what a figure measured on another CPU may differ by.
VECTOR_ISAS = ("amx_tile", "avx512f", "avx2", "sse4_2")


def _first_cpu() -> dict[str, str]:
    """Return the first processor's fields of /proc/cpuinfo (empty when unreadable)."""
    fields: dict[str, str] = {}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return fields
    for line in lines:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    """Return the CPU's name, family/model/stepping and widest vector ISA.

    E.g. "AMD EPYC (family 26, model 2, stepping 1; avx512f)": machines with the same name may
    be different generations, and this project's 2-core machines have been.
    """
    fields = _first_cpu()
    name = fields.get("model name") or platform.processor() or "unknown"
    labels = {"cpu family": "family", "model": "model", "stepping": "stepping"}
    ids = [f"{label} {fields[key]}" for key, label in labels.items() if key in fields]
    flags = set(fields.get("flags", "").split())
    widest = next((isa for isa in VECTOR_ISAS if isa in flags), None)
    details = ", ".join(ids) + (f"; {widest}" if widest else "")
    return f"{name} ({details})" if details else name


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
