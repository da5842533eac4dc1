"""Length buckets: every row lands in exactly one batch; each bucket has one compiled shape."""

import numpy as np
import pytest

from generator.extract.batching import batch_size_for, bucket_length, pad_rows, plan_batches


@pytest.mark.parametrize(
    ("length", "expected"), [(1, 16), (16, 16), (17, 32), (100, 112), (500, 128)]
)
def test_bucket_length_rounds_up_and_caps(length, expected):
    assert bucket_length(length, max_length=128) == expected


def test_batch_size_is_power_of_two_within_budget():
    assert batch_size_for(16, rows=3) == 8
    assert batch_size_for(16, rows=100) == 128
    assert batch_size_for(128, rows=1000, token_budget=8192) == 64


def test_plan_covers_every_row_once_with_one_shape_per_bucket():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 130, size=700)
    batches = plan_batches(lengths, max_length=128)
    rows = np.concatenate([b.rows for b in batches])
    assert sorted(rows.tolist()) == list(range(700))
    shapes = {}
    for batch in batches:
        assert len(batch.rows) <= batch.batch_size
        assert all(bucket_length(int(lengths[r]), 128) == batch.bucket for r in batch.rows)
        shapes.setdefault(batch.bucket, set()).add(batch.batch_size)
    assert all(len(sizes) == 1 for sizes in shapes.values())


def test_pad_rows_masks_padding():
    ids, mask = pad_rows([np.array([5, 6, 7]), np.array([9])], bucket=4, batch_size=3, pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 0], [9, 0, 0, 0], [0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
