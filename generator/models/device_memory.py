"""Refuse an extraction that cannot fit, before it starts: memory available vs the estimate.

Available memory is read where the arrays will live: on an accelerator its allocator's
`bytes_limit − bytes_in_use` (`jax.Device.memory_stats()`), on the CPU the kernel's MemAvailable
(/proc/meminfo; `os.sysconf` free pages elsewhere). Both already exclude what is resident (a
loaded model), so the check before loading compares the parameters and the weights step, and the
check after planning compares one batch's activations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from generator.errors import AtlasError
from generator.models.memory import GIB

WEIGHTS_STEP_COPIES = 4  # float64 working copies of the largest tensor in the weights step


class MemoryRefusal(AtlasError):
    """The extraction would need more memory than the device has."""


@dataclass(frozen=True)
class Available:
    """Bytes free for this extraction and where they were read."""

    bytes: int
    where: str


def cpu_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Return the CPU's available RAM in bytes (MemAvailable, else free pages × page size)."""
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_available() -> Available:
    """Return the free memory of the first JAX device (an accelerator's allocator, or RAM)."""
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if stats.get("bytes_limit"):
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return Available(free, f"the {device.device_kind} ({device.platform})")
    return Available(cpu_available(), "this machine's RAM")


def _gib(n: float) -> str:
    """Format bytes as GiB with two decimals."""
    return f"{n / GIB:.2f} GiB"


def memory_need(parameters: int, largest: int, *, resident: bool, working_sets: int) -> int:
    """Return the bytes a build holds before its forward passes (see check_parameters)."""
    held = 4 * parameters if resident else 2 * 4 * largest
    return held + 8 * WEIGHTS_STEP_COPIES * largest * working_sets


def check_parameters(
    name: str,
    parameters: int,
    largest: int,
    available: Available,
    *,
    resident: bool = True,
    working_sets: int = 1,
    streamable: bool = False,
) -> None:
    """Refuse to load a model whose float32 parameters and weights step exceed what is free.

    Args:
        name: the card's name (starts the message).
        parameters: the parameter count (from the config, before loading).
        largest: entries of the largest tensor (the weights step's working copies).
        available: free memory of the device.
        resident: whether the parameters are loaded (False: streamed tensor by tensor from the
            checkpoint, a weights-only build; then only the token and output embeddings are
            held as float32, at most two of the largest tensor).
        working_sets: tensors the weights step works on at once (its threads).
        streamable: whether a weights-only build could stream this checkpoint (the message
            then says so when that would fit).
    """
    need = memory_need(parameters, largest, resident=resident, working_sets=working_sets)
    if need <= available.bytes:
        return
    what = (
        f"{parameters / 1e9:.2f}B float32 parameters"
        if resident
        else "the embeddings, streaming the other parameters"
    )
    streamed = memory_need(parameters, largest, resident=False, working_sets=working_sets)
    weights_only = (
        "; or drop `corpus` from the card: its weights page alone streams the checkpoint in "
        f"about {_gib(streamed)}"
        if resident and streamable and streamed <= available.bytes
        else ""
    )
    raise MemoryRefusal(
        f"{name}: the model needs about {_gib(need)} ({what} and the weight statistics' "
        f"working copies) but {available.where} has {_gib(available.bytes)} free; shard the "
        "parameters over devices with `mesh: {model: N}` or build on a machine with more "
        f"memory{weights_only}"
    )


def check_batch(name: str, activations: int, available: Available, *, max_length: int) -> None:
    """Refuse a corpus pass whose largest batch (or the showcase) exceeds the free memory."""
    if activations > available.bytes:
        raise MemoryRefusal(
            f"{name}: one batch needs about {_gib(activations)} of activations but "
            f"{available.where} has {_gib(available.bytes)} free; lower `max_length` (now "
            f"{max_length}), set `dtype: bfloat16` and `store_dtype: bfloat16`, or split batches "
            "with `mesh: {data: N}`"
        )


def checkpoint_size(model_dir: Path) -> tuple[int, int] | None:
    """Return (parameters, entries of the largest tensor) without loading, or None if unknown.

    From the safetensors headers when there are any (exact, heads included), else counted from
    config.json's architecture.
    """
    from generator.models.loading import read_config
    from generator.models.memory import parameter_count
    from generator.models.registry import parse_config
    from generator.weight_files import tensor_sizes

    sizes = tensor_sizes(model_dir)
    if sizes:
        return sum(sizes), max(sizes)
    try:
        config = parse_config(read_config(Path(model_dir) / "config.json"))
        width = getattr(config, "embedding_size", 0) or config.d_model
        return parameter_count(config), config.vocab_size * width
    except (AtlasError, AttributeError):  # the loader reports a bad config in its own words
        return None


def check_checkpoint(
    name: str,
    model_dir: Path,
    available: Available | None = None,
    *,
    resident: bool = True,
    working_sets: int = 1,
) -> None:
    """Refuse a checkpoint whose parameters cannot fit, before loading it (see check_parameters)."""
    from generator.models.loading import streams_parameters

    size = checkpoint_size(model_dir)
    if size is not None:
        check_parameters(
            name,
            *size,
            available or device_available(),
            resident=resident,
            working_sets=working_sets,
            streamable=resident and streams_parameters(model_dir),
        )
