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


def test_planner_keeps_the_compiled_corpus_step_within_the_budget():
    import jax.numpy as jnp
    from cards import TINY_BERT

    from generator.extract.corpus_budget import (
        ShapePrograms,
        largest_shape,
        plan_within_budget,
        token_budget_for,
    )
    from generator.extract.reducers import active_reducers
    from generator.extract.steps import make_steps
    from generator.models.loading import load_model

    loaded = load_model(TINY_BERT)
    step, _, params = make_steps(loaded.model, active_reducers(loaded.config), jnp.float32)
    programs = ShapePrograms(step, params)
    lengths = np.random.default_rng(1).integers(20, 30, size=300)  # one 32-token bucket
    roomy, _ = plan_within_budget(programs, lengths, 128, budget=2**40, bytes_per_token=1.0)
    assert largest_shape(roomy) == (256, 32)  # TOKEN_BUDGET: nothing to cut
    full = programs.batch_bytes(256, 32)  # XLA's temporaries and outputs, as compiled
    budget = full // 5
    # A far too low estimate (1 byte per token) plans 256 x 32 first: the measured size
    # of that compiled program sends the planner down until the program fits.
    batches, measured = plan_within_budget(
        programs, lengths, 128, budget=budget, bytes_per_token=1.0
    )
    batch, bucket = largest_shape(batches)
    assert measured == programs.batch_bytes(batch, bucket) <= budget
    assert batch < 256 and batch & (batch - 1) == 0
    assert programs.batch_bytes(2 * batch, bucket) > budget  # the largest power of two that fits
    assert sorted(np.concatenate([b.rows for b in batches]).tolist()) == list(range(300))
    # Run through the compiled program, a batch gives what the jitted step gives.
    ids = np.full((batch, bucket), 5, np.int32)
    mask = np.ones_like(ids)
    special = np.zeros_like(ids)
    direct = step(params, ids, mask, special)["pooled_mean"]
    np.testing.assert_array_equal(programs(params, ids, mask, special)["pooled_mean"], direct)
    assert token_budget_for(budget=10, bytes_per_token=1e9, longest=100) == 128  # one row
