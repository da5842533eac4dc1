"""Corpus batches sized to a memory budget, checked against the compiled program's real size.

The corpus step holds, per batch, every layer's probes and the reducers' working set: XLA's
temporaries grow with the tokens of a batch (bert-base, 64 x 32 tokens: 1.07 GB). Batches are
planned in two steps:
  1. from the estimate (models/memory.py) at the corpus's longest bucket: the most tokens per
     batch (a power of two) whose estimated activations fit ESTIMATE_SHARE of `budget` (the
     estimate leaves out XLA's fixed temporaries: bert-base, 64 x 32 tokens, 1.00 GiB estimated,
     1.07 GiB compiled);
  2. the largest batch shape of that plan is compiled ahead of time, and its measured
     temporaries and outputs (`Compiled.memory_analysis()`) are compared with `budget`; when
     they exceed it, the token budget shrinks by the measured ratio and the plan is redone.
The compiled programs are kept (`ShapePrograms`) and run by the corpus pass, so the check costs
no extra compilation unless the estimate was too low.

`budget` = min(CORPUS_BUDGET, the memory free on the device / FREE_SHARE): the rest of the build
(parameters, attribution programs, the analyze stage) keeps the remainder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from generator.extract import sharding
from generator.extract.batching import TOKEN_BUDGET, Batch, plan_batches
from generator.extract.estimate import forward_flops
from generator.extract.width_groups import MIN_SAVED_FLOPS

log = logging.getLogger(__name__)

CORPUS_BUDGET = 1024**3  # bytes: XLA temporaries and outputs of one corpus batch, at most
FREE_SHARE = 4  # ... and at most a quarter of the memory free when the pass is planned
ESTIMATE_SHARE = 0.8  # the first plan fits its estimate in this share of the budget
MAX_REPLANS = 4
# The corpus step's cost per token over its forward pass's matmul FLOPs (reducers, histograms,
# head metrics): measured 2.8 (all-MiniLM-L6-v2, 128 x 32 tokens, Intel Xeon) and 3.5
# (bert-base, Zen 5) on 2-core CPUs.
CORPUS_STEP_COST = 3.0


def corpus_row_cost(config) -> Callable[[int], float]:
    """Return `width -> FLOP-equivalents` of one row of `width` tokens through the corpus step."""
    return lambda width: CORPUS_STEP_COST * forward_flops(config, 1, width)


def corpus_budget(available: int) -> int:
    """Return the bytes one corpus batch may use, given the bytes free on the device."""
    return int(min(CORPUS_BUDGET, available // FREE_SHARE))


def power_of_two_at_most(value: float, floor: int) -> int:
    """Return the largest power of two <= value, and at least `floor` (a power of two)."""
    if value < floor:
        return floor
    return 1 << int(np.floor(np.log2(value)))


def token_budget_for(budget: float, bytes_per_token: float, longest: int) -> int:
    """Tokens per batch (a power of two, at most TOKEN_BUDGET) whose bytes fit `budget`.

    Never fewer than one row of the longest bucket: a single text that cannot fit is refused by
    the memory check, not split.
    """
    floor = 1 << int(np.ceil(np.log2(max(longest, 1))))
    return min(TOKEN_BUDGET, power_of_two_at_most(budget / max(bytes_per_token, 1.0), floor))


def largest_shape(batches: list[Batch]) -> tuple[int, int]:
    """Return the (batch size, bucket) of the planned batch with the most tokens."""
    batch = max(batches, key=lambda b: (b.batch_size * b.bucket, b.bucket))
    return batch.batch_size, batch.bucket


class ShapePrograms:
    """The jitted corpus step compiled ahead of time once per batch shape, and callable.

    `compiled(batch, bucket)` lowers and compiles the step for that shape (placed as
    `sharding.place_batch` places real batches) and keeps it; calling the object runs the
    program of its inputs' shape, so the corpus pass and the checkpoints reuse them.
    """

    def __init__(self, step, params, mesh=None):
        self.step = step
        self.params = params
        self.mesh = mesh
        self.programs: dict[tuple[int, int], object] = {}

    def compiled(self, batch: int, bucket: int):
        """Return the compiled step of [batch, bucket] inputs (compiling it the first time)."""
        key = (int(batch), int(bucket))
        if key not in self.programs:
            blank = np.zeros(key, np.int32)
            placed = (blank,) * 3
            if self.mesh is not None:
                placed = sharding.place_batch(self.mesh, *placed)
            self.programs[key] = self.step.lower(self.params, *placed).compile()
        return self.programs[key]

    def batch_bytes(self, batch: int, bucket: int) -> int | None:
        """Return the temporaries and outputs of one [batch, bucket] run (None: not reported)."""
        memory = self.compiled(batch, bucket).memory_analysis()
        if memory is None:
            return None
        return int(memory.temp_size_in_bytes + memory.output_size_in_bytes)

    def __call__(self, params, input_ids, attention_mask, special_mask):
        """Run the step compiled for the shape of `input_ids` [batch, token]."""
        program = self.compiled(*input_ids.shape)
        return program(params, input_ids, attention_mask, special_mask)


def plan_within_budget(
    programs: ShapePrograms,
    lengths: np.ndarray,
    max_length: int,
    *,
    budget: int,
    bytes_per_token: float,
    multiple: int = 1,
    row_cost: Callable[[int], float] | None = None,
) -> tuple[list[Batch], int | None]:
    """Plan batches whose compiled corpus step fits `budget`; return (batches, measured bytes).

    Args:
        programs: the corpus step's compiled programs (the largest shape is compiled here).
        lengths: [text] token counts of the corpus.
        max_length: the longest bucket.
        budget: bytes one batch may use.
        bytes_per_token: the estimate's bytes per token at the longest bucket (first plan).
        multiple: batch sizes are multiples of this (the mesh's data axis).
        row_cost: FLOPs of one row through the corpus step at a width (`corpus_row_cost`):
            buckets then merge where padding costs less than another program
            (`batching.merged_widths`); None keeps every bucket.
    """
    longest = max(int(np.max(lengths)), 1)
    tokens = token_budget_for(budget * ESTIMATE_SHARE, bytes_per_token, min(longest, max_length))
    for _ in range(MAX_REPLANS):
        batches = plan_batches(
            lengths,
            max_length,
            token_budget=tokens,
            multiple=multiple,
            row_cost=row_cost,
            program_cost=MIN_SAVED_FLOPS,
        )
        shape = largest_shape(batches)
        measured = programs.batch_bytes(*shape)
        if measured is None or measured <= budget or tokens <= shape[1]:
            return batches, measured
        log.info(
            "corpus batch of %dx%d needs %.2f GiB compiled, over the %.2f GiB budget: replanning",
            *shape,
            measured / 1024**3,
            budget / 1024**3,
        )
        per_token = measured / (shape[0] * shape[1])
        tokens = token_budget_for(budget, per_token, shape[1])
    return batches, measured
