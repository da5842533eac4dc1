"""Length-bucketed batches: every (batch, bucket) shape compiles exactly once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    lengths: np.ndarray, max_length: int, token_budget: int = TOKEN_BUDGET, multiple: int = 1
) -> list[Batch]:
    """Group corpus rows by bucket length, in corpus order inside each bucket.

    Batch sizes are rounded up to a multiple of `multiple` (the mesh's data axis), so every
    batch splits evenly over the devices.
    """
    buckets = np.array([bucket_length(int(n), max_length) for n in lengths])
    batches = []
    for bucket in sorted(set(buckets.tolist())):
        rows = np.flatnonzero(buckets == bucket)
        size = batch_size_for(bucket, len(rows), token_budget)
        size = -(-size // multiple) * multiple
        for start in range(0, len(rows), size):
            batches.append(Batch(bucket=bucket, rows=rows[start : start + size], batch_size=size))
    return batches


def pad_rows(ids: list[np.ndarray], bucket: int, batch_size: int, pad_id: int):
    """Return padded `input_ids` and `attention_mask`, both [batch, token] int32."""
    input_ids = np.full((batch_size, bucket), pad_id, dtype=np.int32)
    attention_mask = np.zeros((batch_size, bucket), dtype=np.int32)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask
