"""Multi-process runs (GPU clusters, TPU pods): joining, agreeing, and who writes.

Every process runs the same extraction over the same inputs (each reads the whole corpus and
checkpoint) and takes part in every sharded computation; only process 0 writes artifacts and
the site. Nothing here imports JAX unless it is already imported: a run that never joined a
distributed runtime is a single process, process 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from generator.artifacts import ArtifactWriter
from generator.atomic import staged_folder
from generator.extract.sharding import MeshError
from generator.schema import check_array

log = logging.getLogger(__name__)


def _jax_loaded() -> bool:
    """Return whether JAX is imported (no JAX: a single process, no distributed runtime)."""
    return "jax" in sys.modules


def is_primary_process() -> bool:
    """Return True on the process that writes artifacts and the site (process 0)."""
    if not _jax_loaded():
        return True
    import jax

    return jax.process_index() == 0


def agree_with_primary(flag: bool) -> bool:
    """Return process 0's value of `flag` on every process (so all take the same branch)."""
    if not _jax_loaded():
        return flag
    import jax

    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def initialize_distributed() -> None:
    """Join a multi-process JAX run (GPU cluster or TPU pod) before any computation.

    Cloud TPU pods, SLURM, Open MPI and Kubernetes are detected by JAX; elsewhere set
    JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID.
    """
    import jax

    number = os.environ.get("JAX_NUM_PROCESSES")
    index = os.environ.get("JAX_PROCESS_ID")
    try:
        jax.distributed.initialize(
            num_processes=int(number) if number else None,
            process_id=int(index) if index else None,
        )
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MeshError(
            f"cannot join the distributed run ({first}); set JAX_COORDINATOR_ADDRESS, "
            "JAX_NUM_PROCESSES and JAX_PROCESS_ID, or run under SLURM / Open MPI / a TPU pod"
        ) from error
    log.info(
        "process %d of %d, %d local of %d devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


class _Sink:
    """Stands in for a streamed array on processes that write nothing: rows stay in memory.

    Later extraction steps read some streamed arrays back (attributions take the last layer's
    pooled means), so every process must hold the values; only process 0 writes them to disk.
    """

    def __init__(self, shape, dtype) -> None:
        self.values = np.zeros(shape, dtype)

    def __setitem__(self, index, value) -> None:
        self.values[index] = value

    def __getitem__(self, index):
        return self.values[index]

    def __iadd__(self, value):
        """Add rows in place (summed reducers, e.g. the score histograms)."""
        self.values += value
        return self

    def flush(self) -> None:
        pass


class DiscardingWriter:
    """The ArtifactWriter interface for processes other than 0: records, writes nothing."""

    def __init__(self) -> None:
        self.arrays: dict[str, dict] = {}

    def write_array(self, name: str, array, axes: tuple[str, ...]) -> None:
        """Record the array's shape; write nothing."""
        check_array(name, axes, np.asarray(array).dtype.name)
        self.arrays[name] = {"shape": list(np.shape(array)), "axes": list(axes)}

    def open_array(self, name: str, shape, dtype, axes: tuple[str, ...]) -> _Sink:
        """Return an in-memory sink for streamed rows."""
        check_array(name, axes, np.dtype(dtype).name)
        self.arrays[name] = {"shape": [int(s) for s in shape], "axes": list(axes)}
        return _Sink(shape, dtype)

    def finish(self, manifest: dict) -> dict:
        """Return the manifest that process 0 writes (without hashes); write nothing."""
        return {**manifest, "arrays": self.arrays}


@contextlib.contextmanager
def artifact_writer(folder: Path) -> Iterator[ArtifactWriter | DiscardingWriter]:
    """Yield the writer of this process: a staged ArtifactWriter on process 0, else a discarder."""
    if not is_primary_process():
        yield DiscardingWriter()
        return
    with staged_folder(folder) as staging:
        yield ArtifactWriter(staging)


__all__ = [
    "DiscardingWriter",
    "agree_with_primary",
    "artifact_writer",
    "initialize_distributed",
    "is_primary_process",
]
