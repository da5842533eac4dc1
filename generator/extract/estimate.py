"""Estimate the time of the extract stage's heavy steps from their FLOPs and measured throughput.

An estimate, not a measurement, and stated as one: it counts the matrix products of each step
(the forward passes it runs, a backward pass as two forward passes) and divides by the matmul
throughput measured on the first device in this process. It leaves out compilation (reported
apart), host work and memory-bound operations, so small models run below the estimated rate.

FLOPs of one forward pass over `tokens` tokens of sequences `context` tokens long:
  2 x tokens x (weights a token meets: q/k/v/o and MLP matrices of every layer application,
  plus the LM head's d_model x vocab when the model has one) + 4 x tokens x context x layers x
  heads x d_head (the scores q.k and the weighted sum of values).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

LM_HEADS = ("masked-lm", "causal-lm", "permutation-lm")
BACKWARD = 3.0  # a forward pass plus its backward pass, in forward-pass equivalents


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
    heads = tuple(getattr(config, "heads", ()))
    if config.seq2seq or any(head in LM_HEADS for head in heads):
        weights += config.d_model * config.vocab_size
    tokens = rows * width
    scores = 4.0 * tokens * width * attention_layers * config.n_heads * config.d_head
    return 2.0 * tokens * weights + scores


@functools.cache
def measured_throughput(dtype: str = "float32") -> float:
    """Return the matmul FLOP/s of the first device in `dtype` (best of 3 after a warm-up).

    Measured once per process and dtype: the devices do not change within a process.
    """
    import jax
    import jax.numpy as jnp

    size = 1024 if jax.devices()[0].platform == "cpu" else 8192
    a = jnp.ones((size, size), jnp.dtype(dtype))
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best


@dataclass(frozen=True)
class StepEstimate:
    """One heavy step: its name, the budget it runs (in words) and its FLOPs."""

    step: str
    budget: str
    flops: float

    def seconds(self, throughput: float) -> float:
        """Return the estimated seconds at `throughput` FLOP/s."""
        return self.flops / throughput


def summary(estimates: list[StepEstimate], throughput: float) -> str:
    """Return the one-line estimate: each step's seconds and budget, and the throughput used."""
    total = sum(e.seconds(throughput) for e in estimates)
    parts = ", ".join(f"{e.step} {e.seconds(throughput):.1f} s ({e.budget})" for e in estimates)
    return (
        f"time estimate {total:.1f} s at a measured {throughput / 1e9:.0f} GFLOP/s matmul rate, "
        f"compilation not included: {parts}"
    )
