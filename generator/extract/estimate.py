"""Estimate the time of the extract stage's heavy steps from their FLOPs and measured throughput.

An estimate, not a measurement, and stated as one: it counts the matrix products of each step
(the forward passes it runs, a backward pass as two forward passes) and divides by the matmul
throughput measured on the first device in this process. It leaves out compilation (reported
apart), host work and memory-bound operations, so small models run below the estimated rate.
The corpus pass counts its reducers (histograms, head metrics, pooled statistics) as
`corpus_budget.CORPUS_STEP_COST` times its forward pass, their measured cost on the CPU.
The parameter-gradient step is the exception: one text at a time, it moves a float32 gradient of
every parameter several times per text (`GRADIENT_PASSES`), so its estimate adds those bytes at
the measured rate of a jitted elementwise pass (`measured_copy_rates`): tensors above glibc's
mmap threshold get a fresh, zero-filled mapping at every call (the CPU's slow case), smaller ones
reuse heap memory.

FLOPs of one forward pass over `tokens` tokens of sequences `context` tokens long:
  2 x tokens x (weights a token meets: q/k/v/o and MLP matrices of every layer application,
  plus the LM head's d_model x vocab when the model has one) + 4 x tokens x context x layers x
  heads x d_head (the scores q.k and the weighted sum of values).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from generator.models.memory import has_vocabulary_logits

BACKWARD = 3.0  # a forward pass plus its backward pass, in forward-pass equivalents
# Param-sized float32 passes per text of the gradient step: forward and backward read the
# weights, the backward writes the gradient, the running sum reads it and the total and writes
# the total, the squared norm reads it again (XLA fuses some: an upper count).
GRADIENT_PASSES = 7
MMAP_THRESHOLD = 32 << 20  # glibc's largest: bigger buffers get a new mapping at every call
FRESH_BYTES = 2 * MMAP_THRESHOLD  # measured as such a buffer
REUSED_BYTES = 4 << 20  # measured as heap memory the previous call freed


def matmul_weights(config) -> tuple[int, int]:
    """Return (weights one token meets in the layers, attention layers) of an architecture."""
    d, heads = config.d_model, config.n_heads
    q_width = heads * config.d_head
    kv_width = getattr(config, "n_kv_heads", heads) * config.d_head
    attention = d * (q_width + 2 * kv_width) + q_width * d
    gated = getattr(config, "gated", False) or config.family == "llama"
    mlp = (3 if gated else 2) * d * config.d_mlp
    if config.seq2seq:  # encoder blocks, then decoder blocks with cross-attention
        decoder = config.n_decoder_layers
        return (
            config.n_layers * (attention + mlp) + decoder * (2 * attention + mlp),
            config.n_layers + 2 * decoder,
        )
    return config.n_layers * (attention + mlp), config.n_layers


def forward_flops(config, rows: int, width: int) -> float:
    """FLOPs of one forward pass over a batch of `rows` sequences of `width` tokens."""
    weights, attention_layers = matmul_weights(config)
    if has_vocabulary_logits(config):
        weights += config.d_model * config.vocab_size
    tokens = rows * width
    scores = 4.0 * tokens * width * attention_layers * config.n_heads * config.d_head
    return 2.0 * tokens * weights + scores


def best_seconds(program, argument, repeats: int) -> float:
    """Return the fastest of `repeats` timed calls of `program(argument)`, after a warm-up."""
    program(argument).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        program(argument).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return best


@functools.cache
def measured_throughput(dtype: str = "float32") -> float:
    """Return the matmul FLOP/s of the first device in `dtype` (best of 5 after a warm-up).

    Measured once per process and dtype: the devices do not change within a process.
    """
    import jax
    import jax.numpy as jnp

    size = 1024 if jax.devices()[0].platform == "cpu" else 8192
    a = jnp.ones((size, size), jnp.dtype(dtype))
    return 2.0 * size**3 / best_seconds(jax.jit(lambda x: x @ x), a, repeats=5)


@functools.cache
def measured_copy_rates() -> tuple[float, float]:
    """Return (fresh, reused) bytes/s of a jitted elementwise pass `x * 2` (read and write).

    fresh: a `FRESH_BYTES` array, whose output buffer the CPU runtime maps anew at every call;
    reused: a `REUSED_BYTES` one, served from the heap. Best of 3 after a warm-up, once per
    process.
    """
    import jax
    import jax.numpy as jnp

    double = jax.jit(lambda x: x * 2.0)
    fresh, reused = (
        2.0 * size / best_seconds(double, jnp.ones((size // 4,), jnp.float32), repeats=3)
        for size in (FRESH_BYTES, REUSED_BYTES)
    )
    return fresh, reused


def gradient_memory_seconds(tensor_bytes: list[int], texts: int) -> float:
    """Seconds the gradient step spends moving float32 gradients of tensors of `tensor_bytes`."""
    fresh, reused = measured_copy_rates()
    large = sum(b for b in tensor_bytes if b > MMAP_THRESHOLD)
    small = sum(tensor_bytes) - large
    return texts * GRADIENT_PASSES * (large / fresh + small / reused)


@dataclass(frozen=True)
class StepEstimate:
    """One heavy step: its name, the budget it runs (in words), its FLOPs, and memory seconds.

    memory_seconds: time of the step's memory-bound passes, already measured (0: none counted).
    """

    step: str
    budget: str
    flops: float
    memory_seconds: float = 0.0

    def seconds(self, throughput: float) -> float:
        """Return the estimated seconds at `throughput` FLOP/s."""
        return self.flops / throughput + self.memory_seconds


def summary(estimates: list[StepEstimate], throughput: float) -> str:
    """Return the one-line estimate: each step's seconds and budget, and the throughput used."""
    total = sum(e.seconds(throughput) for e in estimates)
    parts = ", ".join(f"{e.step} {e.seconds(throughput):.1f} s ({e.budget})" for e in estimates)
    return (
        f"time estimate {total:.1f} s at a measured {throughput / 1e9:.0f} GFLOP/s matmul rate, "
        f"compilation not included: {parts}"
    )
