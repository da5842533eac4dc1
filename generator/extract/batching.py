"""Length-bucketed batches: every (batch, bucket) shape compiles exactly once.

Texts are bucketed by length in `BUCKET_STEP`-token steps. Given the cost of a row at each width
(`row_cost`), narrow buckets whose padding to a wider one costs less than compiling another
program (`program_cost`) run at that wider width (`merged_widths`): a small corpus, or a bucket
of a few texts, then compiles one program fewer. A text's results depend on its own tokens only
(padded keys get no attention, pooling and statistics skip padding), so its width changes at
most float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from generator.extract.sharding import round_up

BUCKET_STEP = 16
TOKEN_BUDGET = 8192  # tokens per batch; rows = budget // bucket length


@dataclass(frozen=True)
class Batch:
    """Rows of the corpus that share one padded length."""

    bucket: int  # padded sequence length
    rows: np.ndarray  # [row] corpus indices (fewer than batch_size in the last batch of a bucket)
    batch_size: int  # compiled batch size for this bucket


def bucket_length(length: int, max_length: int, step: int = BUCKET_STEP) -> int:
    """Round a sequence length up to the next bucket (a multiple of `step`, at most max_length)."""
    return int(min(max_length, -(-max(length, 1) // step) * step))


MIN_BATCH = 8
TRIM_STEP = 8  # attribution batches are cut to their longest text, rounded up to this


def trimmed_width(longest: int, limit: int) -> int:
    """The width a batch needs: its longest text rounded up to TRIM_STEP, at most `limit`.

    Attribution programs compile once for their own batch, so they need not share the
    corpus pass's 16-token buckets; padding beyond the longest text only costs time.
    """
    return min(int(limit), -(-max(int(longest), 1) // TRIM_STEP) * TRIM_STEP)


def batch_size_for(bucket: int, rows: int, token_budget: int = TOKEN_BUDGET) -> int:
    """Return the compiled batch size of a bucket: a power of two, capped by the token budget.

    Small buckets get a small batch (little padding waste); the power of two keeps the number
    of distinct shapes, and so of compilations, small.
    """
    cap = max(1, token_budget // bucket)
    fitted = max(MIN_BATCH, 1 << max(0, int(rows) - 1).bit_length())
    return int(min(cap, fitted))


def plan_batches(
    lengths: np.ndarray,
    max_length: int,
    token_budget: int = TOKEN_BUDGET,
    multiple: int = 1,
    *,
    row_cost: Callable[[int], float] | None = None,
    program_cost: float = 0.0,
) -> list[Batch]:
    """Group corpus rows by bucket length, in corpus order inside each bucket.

    Batch sizes are rounded up to a multiple of `multiple` (the mesh's data axis), so every
    batch splits evenly over the devices. With `row_cost` (the cost of one row at a width, e.g.
    its FLOPs), buckets are merged into wider ones where that saves more than `program_cost`
    per program (`merged_widths`).
    """
    buckets = np.array([bucket_length(int(n), max_length) for n in lengths])
    if row_cost is not None and len(buckets):
        widths = merged_widths(buckets, token_budget, multiple, row_cost, program_cost)
        buckets = np.array([widths[int(b)] for b in buckets])
    batches = []
    for bucket in sorted(set(buckets.tolist())):
        rows = np.flatnonzero(buckets == bucket)
        size = padded_batch_size(bucket, len(rows), token_budget, multiple)
        for start in range(0, len(rows), size):
            batches.append(Batch(bucket=bucket, rows=rows[start : start + size], batch_size=size))
    return batches


def padded_batch_size(bucket: int, rows: int, token_budget: int, multiple: int) -> int:
    """`batch_size_for`, rounded up to a multiple of `multiple`."""
    return round_up(batch_size_for(bucket, rows, token_budget), multiple)


def merged_widths(
    buckets: np.ndarray,
    token_budget: int,
    multiple: int,
    row_cost: Callable[[int], float],
    program_cost: float,
) -> dict[int, int]:
    """Map each bucket to the width its rows run at, for the least total cost.

    The cost of a plan: every batch row run (padding rows of a last, partly filled batch
    included) at `row_cost(width)`, plus `program_cost` per width (one compiled program each).
    Rows may only move to a wider bucket; the widest always runs at its own width. Exact, by
    dynamic programming over the sorted buckets (a width's group is a run of adjacent buckets).
    """
    widths, counts = np.unique(buckets, return_counts=True)
    widths = [int(w) for w in widths]

    def group_cost(rows: int, width: int) -> float:
        size = padded_batch_size(width, rows, token_budget, multiple)
        return round_up(rows, size) * row_cost(width) + program_cost

    # best[i]: the cheapest plan of buckets 0..i-1 whose widest bucket runs at its own width.
    best, cut = [0.0] + [float("inf")] * len(widths), [0] * (len(widths) + 1)
    for stop in range(1, len(widths) + 1):
        for start in range(stop):
            total = best[start] + group_cost(int(counts[start:stop].sum()), widths[stop - 1])
            if total < best[stop]:
                best[stop], cut[stop] = total, start
    plan, stop = {}, len(widths)
    while stop:
        start = cut[stop]
        plan.update({width: widths[stop - 1] for width in widths[start:stop]})
        stop = start
    return plan


def pad_rows(ids: list[np.ndarray], bucket: int, batch_size: int, pad_id: int):
    """Return padded `input_ids` and `attention_mask`, both [batch, token] int32."""
    input_ids = np.full((batch_size, bucket), pad_id, dtype=np.int32)
    attention_mask = np.zeros((batch_size, bucket), dtype=np.int32)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask
