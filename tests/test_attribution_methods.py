"""Attribution methods on functions with known answers (no model needed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generator.attribution.heads import (
    ablation_importance,
    collapsed,
    gradient_importance,
    pruning_curve,
    pruning_curves,
    pruning_curves_until_collapse,
    single_head_masks,
    spearman,
)
from generator.attribution.rollout import attention_rollout
from generator.attribution.token_methods import (
    gauss_legendre,
    gradient_norm,
    gradient_times_input,
    integrated_gradients,
    token_scores,
)

jax.config.update("jax_enable_x64", False)


def test_linear_objective_attributions_are_exact():
    weights = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    objective = lambda e: jnp.sum(e * weights)  # noqa: E731
    embeddings = jnp.array([[1.0, 1.0], [2.0, 0.0], [0.5, -2.0]])
    np.testing.assert_allclose(
        gradient_norm(objective, embeddings), np.linalg.norm(weights, axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(
        gradient_times_input(objective, embeddings), np.sum(weights * embeddings, 1), rtol=1e-6
    )
    attributions, error = integrated_gradients(
        objective, embeddings, jnp.zeros_like(embeddings), steps=4
    )
    np.testing.assert_allclose(attributions, np.sum(weights * embeddings, 1), rtol=1e-5)
    assert float(error) < 1e-5


def test_integrated_gradients_completeness_on_nonlinear_objective():
    key = jax.random.PRNGKey(0)
    w1 = jax.random.normal(key, (4, 8))
    objective = lambda e: jnp.sum(jnp.tanh(e @ w1) ** 2) + jnp.sum(jnp.sin(e))  # noqa: E731
    embeddings = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    attributions, error = integrated_gradients(
        objective, embeddings, jnp.zeros_like(embeddings), steps=64
    )
    gap = objective(embeddings) - objective(jnp.zeros_like(embeddings))
    assert float(error) < 1e-4
    np.testing.assert_allclose(float(jnp.sum(attributions)), float(gap), rtol=1e-4)


def test_token_scores_in_one_program_equal_each_method_alone():
    w1 = jax.random.normal(jax.random.PRNGKey(2), (4, 8))
    objective = lambda e: jnp.sum(jnp.tanh(e @ w1) ** 2) + jnp.sum(jnp.sin(e))  # noqa: E731
    embeddings = jax.random.normal(jax.random.PRNGKey(3), (5, 4))
    baseline = jnp.full_like(embeddings, 0.3)
    scores = jax.jit(lambda x, b: token_scores(objective, x, b, steps=32))(embeddings, baseline)
    ig, error = integrated_gradients(objective, embeddings, baseline, steps=32)
    np.testing.assert_allclose(scores["integrated_gradients"], ig, rtol=1e-5, atol=1e-6)
    assert float(scores["ig_error"]) == pytest.approx(float(error), abs=1e-5)
    np.testing.assert_allclose(scores["grad_norm"], gradient_norm(objective, embeddings), rtol=1e-5)
    np.testing.assert_allclose(
        scores["grad_input"], gradient_times_input(objective, embeddings), rtol=1e-5, atol=1e-6
    )
    assert float(scores["objective"]) == pytest.approx(float(objective(embeddings)), rel=1e-6)
    assert float(scores["baseline_objective"]) == pytest.approx(
        float(objective(baseline)), rel=1e-6
    )


@pytest.mark.parametrize("chunk", [1, 7, 34])
def test_token_scores_in_chunks_of_path_points_equal_all_at_once(chunk):
    w1 = jax.random.normal(jax.random.PRNGKey(4), (4, 8))
    objective = lambda e: jnp.sum(jnp.tanh(e @ w1) ** 2) + jnp.sum(jnp.sin(e))  # noqa: E731
    embeddings = jax.random.normal(jax.random.PRNGKey(5), (6, 4))
    baseline = jnp.zeros_like(embeddings)
    whole = jax.jit(lambda x, b: token_scores(objective, x, b, steps=32))(embeddings, baseline)
    parts = jax.jit(lambda x, b: token_scores(objective, x, b, 32, chunk))(embeddings, baseline)
    for name, value in whole.items():  # 34 points: 32 on the path, the input, the baseline
        np.testing.assert_allclose(parts[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_backward_memory_keeps_every_point_together_until_it_does_not_fit():
    from generator.models.memory import GIB, backward_bytes, rows_within
    from generator.models.registry import parse_config

    minilm = parse_config(
        {
            "model_type": "bert",
            "vocab_size": 30522,
            "hidden_size": 384,
            "num_hidden_layers": 6,
            "num_attention_heads": 12,
            "intermediate_size": 1536,
            "max_position_embeddings": 512,
        }
    )
    # the measured failure: 66 points of 512 tokens at once were killed at 24 GB of RSS
    assert backward_bytes(minilm, 66, 512) > 16 * GIB
    assert backward_bytes(minilm, 66, 32) < GIB  # the default card's showcase: one batch
    assert rows_within(minilm, 66, 32, 4 * GIB) == 66
    chunk = rows_within(minilm, 66, 512, 4 * GIB)
    assert 1 <= chunk < 66 and backward_bytes(minilm, chunk, 512) <= 4 * GIB
    assert rows_within(minilm, 66, 512, 1) == 1  # never fewer than one


@pytest.mark.parametrize(
    ("total", "most", "chunk"),
    [
        (66, 66, 66),
        (66, 500, 66),
        (66, 52, 33),
        (66, 33, 33),
        (66, 32, 22),
        (66, 1, 1),
        (66, 0, 1),
        (7, 3, 3),
    ],
)
def test_equal_chunks_cover_the_points_with_the_fewest_chunks(total, most, chunk):
    from generator.models.memory import equal_chunk

    got = equal_chunk(total, most)
    assert got == chunk
    fewest = -(-total // max(most, 1))
    assert got <= max(most, 1) and -(-total // got) == fewest


def test_the_default_cards_points_fit_the_host_budget_and_bert_base_splits_in_two():
    from generator.extract.attribution_capture import HOST_BACKWARD_BUDGET
    from generator.models.memory import equal_chunk, rows_within
    from generator.models.registry import parse_config

    def bert(width: int, layers: int, heads: int) -> object:
        return parse_config(
            {
                "model_type": "bert",
                "vocab_size": 30522,
                "hidden_size": width,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "intermediate_size": 4 * width,
                "max_position_embeddings": 512,
            }
        )

    points = 66
    minilm, base = bert(384, 6, 12), bert(768, 12, 12)
    # MiniLM's showcase texts (at most 40 tokens): every point at once, as before the budget
    assert rows_within(minilm, points, 40, HOST_BACKWARD_BUDGET) == points
    # bert-base's (16-24 tokens): two equal chunks, so its peak RSS is not the points'
    for width in (16, 24):
        fit = rows_within(base, points, width, HOST_BACKWARD_BUDGET)
        assert equal_chunk(points, fit) == 33


def test_gauss_legendre_integrates_polynomials_exactly():
    nodes, weights = gauss_legendre(5)
    assert abs(weights.sum() - 1) < 1e-12
    assert abs(np.sum(weights * nodes**7) - 1 / 8) < 1e-12


def test_rollout_rows_sum_to_one_and_identity_attention_stays_identity():
    n = 4
    identity = np.broadcast_to(np.eye(n), (3, 2, n, n))
    np.testing.assert_allclose(attention_rollout(identity, np.ones(n, bool)), np.eye(n))
    rng = np.random.default_rng(0)
    att = rng.random((3, 2, 5, 5))
    att /= att.sum(-1, keepdims=True)
    rollout = attention_rollout(att, np.array([1, 1, 1, 1, 0], bool))
    assert rollout.shape == (4, 4)
    np.testing.assert_allclose(rollout.sum(-1), 1.0)


def test_uniform_attention_rollout_matches_closed_form():
    n = 3
    uniform = np.full((2, 1, n, n), 1 / n)
    mixing = 0.5 * np.eye(n) + 0.5 / n
    np.testing.assert_allclose(attention_rollout(uniform, np.ones(n, bool)), mixing @ mixing)


def head_objective():
    """Per-example objective of a toy 'model' whose heads contribute known amounts."""
    contribution = jnp.array([[1.0, 0.0, 3.0], [0.5, 2.0, 0.0]])
    examples = jnp.array([1.0, 2.0])

    def objective(mask):  # [layer, head], or a list of [head] rows (as models index it)
        mask = jnp.stack([mask[layer] for layer in range(len(contribution))])
        return examples * jnp.sum(mask * contribution) + 0.1 * jnp.sum(mask) ** 2

    return objective, contribution, examples


def test_ablation_equals_separate_evaluations_and_nothing_changes_nothing():
    objective, _, _ = head_objective()
    importance = ablation_importance(objective, 2, 3, chunk=4)
    full = jnp.mean(objective(jnp.ones((2, 3))))
    for index, mask in enumerate(single_head_masks(2, 3)):
        layer, head = divmod(index, 3)
        separate = full - jnp.mean(objective(mask))
        assert float(importance[layer, head]) == pytest.approx(float(separate), rel=1e-6)
    assert float(jnp.mean(objective(jnp.ones((2, 3)))) - full) == 0.0


def test_gradient_importance_matches_analytic_derivative():
    objective, contribution, examples = head_objective()
    expected = np.mean(np.abs(examples[:, None, None] * contribution[None] + 0.1 * 2 * 6), axis=0)
    np.testing.assert_allclose(gradient_importance(objective, 2, 3), expected, rtol=1e-6)


def test_pruning_curve_starts_at_full_objective_and_orders_matter():
    objective, contribution, _ = head_objective()
    order = np.argsort(-np.ravel(contribution))
    fractions = np.array([0.0, 0.5])
    curve = pruning_curve(objective, order, 2, 3, fractions)
    assert curve[0] == pytest.approx(float(jnp.mean(objective(jnp.ones((2, 3))))))
    worst_first = pruning_curve(objective, order[::-1], 2, 3, fractions)
    assert curve[1] < worst_first[1]


def test_pruning_curves_of_several_orders_equal_one_curve_each():
    objective, contribution, _ = head_objective()
    calls = []

    def evaluate(masks):
        calls.append(len(masks))
        return jnp.stack([jnp.mean(objective(mask)) for mask in masks])

    orders = [np.argsort(-np.ravel(contribution)), np.arange(6), np.arange(6)[::-1]]
    fractions = np.array([0.0, 0.34, 0.5, 0.84])
    curves = pruning_curves(evaluate, orders, 2, 3, fractions)
    for order, curve in zip(orders, curves, strict=True):
        np.testing.assert_allclose(curve, pruning_curve(objective, order, 2, 3, fractions))
    assert len(calls) == 1 and calls[0] < len(orders) * len(fractions)  # one call, no repeats


def counted_evaluator(objective):
    """Mean objective per mask, recording every mask it is given."""
    seen = []

    def evaluate(masks):
        seen.extend(np.asarray(masks))
        return jnp.stack([jnp.mean(objective(mask)) for mask in masks])

    return evaluate, seen


def test_pruning_curves_until_collapse_equal_the_full_curves_when_nothing_collapses():
    objective, contribution, _ = head_objective()
    orders = [np.argsort(-np.ravel(contribution)), np.arange(6), np.arange(6)[::-1]]
    fractions = np.array([0.0, 0.34, 0.5, 0.84])
    evaluate, seen = counted_evaluator(objective)
    curves, floor, stop = pruning_curves_until_collapse(
        evaluate, orders, (2, 3), fractions, tolerance=0.0
    )
    np.testing.assert_allclose(curves, pruning_curves(evaluate, orders, 2, 3, fractions))
    assert stop is None
    assert floor == pytest.approx(float(jnp.mean(objective(jnp.zeros((2, 3))))))
    assert not np.any(seen[0])  # the floor first: every head removed


def test_pruning_curves_stop_once_every_order_has_collapsed():
    # objective = number of heads kept among the first three (flat index 0, 1, 2), per example
    def objective(mask):
        return jnp.full((2,), jnp.sum(jnp.ravel(mask)[:3]))

    orders = [np.array([0, 1, 2, 3, 4, 5]), np.array([2, 1, 0, 5, 4, 3])]
    fractions = np.array([0.0, 0.34, 0.5, 0.67, 0.84])  # 0, 2, 3, 4, 5 heads removed
    evaluate, seen = counted_evaluator(objective)
    curves, floor, stop = pruning_curves_until_collapse(
        evaluate, orders, (2, 3), fractions, tolerance=0.01
    )
    assert floor == 0.0 and stop == 0.5  # both orders have removed heads 0, 1, 2 at 3 heads
    np.testing.assert_array_equal(curves[:, :3], [[3.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    assert np.isnan(curves[:, 3:]).all()  # not evaluated
    assert len(seen) == 1 + 1 + 2 + 1  # floor, fraction 0, then each fraction's distinct masks
    assert collapsed(np.array([0.02, -0.02]), full=3.0, floor=0.0, tolerance=0.01)
    assert not collapsed(np.array([0.02, 0.04]), full=3.0, floor=0.0, tolerance=0.01)


def test_pruning_curves_in_batches_run_on_across_fractions_with_the_same_values():
    objective, contribution, _ = head_objective()
    orders = [np.argsort(-np.ravel(contribution)), np.arange(6), np.arange(6)[::-1]]
    fractions = np.array([0.0, 0.34, 0.5, 0.67, 0.84])
    calls = []

    def evaluate(masks):
        calls.append(len(masks))
        return jnp.stack([jnp.mean(objective(mask)) for mask in masks])

    single, seen = counted_evaluator(objective)
    one_by_one = pruning_curves_until_collapse(single, orders, (2, 3), fractions, tolerance=0.0)
    batched = pruning_curves_until_collapse(
        evaluate, orders, (2, 3), fractions, tolerance=0.0, batch=4
    )
    np.testing.assert_array_equal(batched[0], one_by_one[0])
    assert batched[1:] == one_by_one[1:]
    # the same masks, in calls of four but the last
    assert sum(calls) == len(seen) and calls[:-1] == [4] * (len(calls) - 1) and calls[-1] <= 4


def test_batched_pruning_curves_stop_at_the_collapse_and_drop_what_ran_past_it():
    def objective(mask):
        return jnp.full((2,), jnp.sum(jnp.ravel(mask)[:3]))

    orders = [np.array([0, 1, 2, 3, 4, 5]), np.array([2, 1, 0, 5, 4, 3])]
    fractions = np.array([0.0, 0.34, 0.5, 0.67, 0.84])
    evaluate, seen = counted_evaluator(objective)
    curves, floor, stop = pruning_curves_until_collapse(
        evaluate, orders, (2, 3), fractions, tolerance=0.01, batch=6
    )
    assert floor == 0.0 and stop == 0.5
    np.testing.assert_array_equal(curves[:, :3], [[3.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    # floor, fraction 0 (one mask), 0.34 (two), 0.5 (one: both orders removed heads 0-2),
    # then one of 0.67's two masks in the same call: run, and dropped
    assert np.isnan(curves[:, 3:]).all()
    assert len(seen) == 6


def test_spearman_of_identical_rankings_is_one():
    a = np.array([[3.0, 1.0], [2.0, 0.0]])
    assert spearman(a, a * 10) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_rows_equal_scipy_on_ties_constants_and_nan():
    """Average ranks and many rows at once give scipy's spearmanr, NaN where it is undefined."""
    import warnings

    from scipy.stats import rankdata, spearmanr

    from generator.attribution.heads import average_ranks, spearman_rows

    rng = np.random.default_rng(0)
    first = np.round(rng.normal(size=(40, 30)), 1)  # many ties
    second = np.round(rng.normal(size=(40, 30)) + first, 0)
    first[3] = 2.0  # every value tied: undefined
    second[5, 7] = np.nan
    np.testing.assert_array_equal(average_ranks(first), rankdata(first, axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [spearmanr(a, b).statistic for a, b in zip(first, second, strict=True)]
    got = spearman_rows(first, second)
    assert np.isnan(got[3]) and np.isnan(got[5])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
