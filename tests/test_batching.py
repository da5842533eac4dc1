"""Length buckets: every row lands in exactly one batch; each bucket has one compiled shape."""

import itertools

import numpy as np
import pytest

from generator.extract.batching import (
    batch_size_for,
    bucket_length,
    merged_widths,
    pad_rows,
    padded_batch_size,
    plan_batches,
)


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


def plan_cost(buckets, widths, budget, multiple, row_cost, program_cost) -> float:
    """Cost of running each bucket at widths[bucket]: batch rows x row cost, plus programs."""
    total = 0.0
    for width in set(widths.values()):
        rows = sum(int(np.sum(buckets == b)) for b, w in widths.items() if w == width)
        size = padded_batch_size(width, rows, budget, multiple)
        total += -(-rows // size) * size * row_cost(width) + program_cost
    return total


@pytest.mark.parametrize("seed", range(40))
def test_merged_widths_is_the_cheapest_plan(seed):
    """The dynamic programme equals a brute force over every set of widths kept."""
    rng = np.random.default_rng(seed)
    buckets = rng.choice(
        [16, 32, 48, 64, 80], size=int(rng.integers(1, 300)), p=rng.dirichlet([1] * 5)
    )
    budget, multiple = int(rng.choice([512, 2048, 8192])), int(rng.choice([1, 2, 8]))
    row_cost = lambda width: width * (1.0 + width / 64)  # noqa: E731  (attention grows with width)
    program_cost = float(rng.choice([0.0, 500.0, 5e4, 1e7]))
    plan = merged_widths(buckets, budget, multiple, row_cost, program_cost)
    present = sorted(set(buckets.tolist()))
    assert set(plan) == set(present) and all(plan[b] >= b for b in present)
    best = float("inf")
    for kept in itertools.product([False, True], repeat=len(present) - 1):
        runs = [w for w, keep in zip(present, [*kept, True], strict=True) if keep]
        widths = {b: min(w for w in runs if w >= b) for b in present}
        best = min(best, plan_cost(buckets, widths, budget, multiple, row_cost, program_cost))
    cost = plan_cost(buckets, plan, budget, multiple, row_cost, program_cost)
    assert cost == pytest.approx(best)
    plain = {b: b for b in present}
    assert cost <= plan_cost(buckets, plain, budget, multiple, row_cost, program_cost) + 1e-9


def test_merged_plan_runs_every_row_once_at_no_narrower_width():
    lengths = np.array([5] * 300 + [20] * 7 + [40] * 100)
    cost = lambda width: float(width)  # noqa: E731
    plain = plan_batches(lengths, 128, token_budget=4096)
    assert sorted({b.bucket for b in plain}) == [16, 32, 48]
    # The 7 texts of the 32-token bucket cost a whole batch of their own: they join the 48s.
    merged = plan_batches(lengths, 128, token_budget=4096, row_cost=cost, program_cost=1.0)
    assert sorted({b.bucket for b in merged}) == [16, 48]
    rows = np.concatenate([b.rows for b in merged])
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in merged:
        assert all(bucket_length(int(lengths[r]), 128) <= batch.bucket for r in batch.rows)
    # Compiling costs more than any padding: one program, at the widest bucket.
    one = plan_batches(lengths, 128, token_budget=4096, row_cost=cost, program_cost=1e9)
    assert {(b.bucket, b.batch_size) for b in one} == {(48, batch_size_for(48, len(lengths), 4096))}


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
