"""Spectral statistics and heatmap downsampling against numpy on matrices with known answers."""

import numpy as np
import pytest

from generator.extract.downsample import block_shape, max_abs_pool
from generator.extract.spectra import (
    effective_rank,
    fit_power_law,
    head_blocks,
    singular_values,
    spectrum_summary,
    split_fused_qkv,
    stable_rank,
)


def random_orthogonal(n, rng):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def test_rank_one_matrix_has_effective_and_stable_rank_one():
    rng = np.random.default_rng(0)
    w = np.outer(rng.normal(size=40), rng.normal(size=30))
    sigma = singular_values(w)
    assert effective_rank(sigma) == pytest.approx(1.0, abs=1e-6)
    assert stable_rank(sigma) == pytest.approx(1.0, abs=1e-9)


def test_identity_has_unit_singular_values_and_full_effective_rank():
    sigma = singular_values(np.eye(17))
    np.testing.assert_allclose(sigma, np.ones(17), atol=1e-12)
    assert effective_rank(sigma) == pytest.approx(17.0)
    assert stable_rank(sigma) == pytest.approx(17.0)


def test_known_spectrum_is_recovered():
    rng = np.random.default_rng(1)
    s = np.array([9.0, 5.0, 3.0, 1.0, 0.5, 0.1])
    u = random_orthogonal(20, rng)[:, :6]
    v = random_orthogonal(6, rng)
    w = (u * s) @ v.T
    np.testing.assert_allclose(singular_values(w), s, rtol=1e-10)
    p = s / s.sum()
    assert effective_rank(singular_values(w)) == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    assert stable_rank(singular_values(w)) == pytest.approx(np.sum(s**2) / 81.0)


def test_effective_rank_lies_between_one_and_the_rank():
    rng = np.random.default_rng(2)
    sigma = singular_values(rng.normal(size=(50, 12)))
    assert 1.0 <= effective_rank(sigma) <= 12.0
    assert 1.0 <= stable_rank(sigma) <= 12.0


@pytest.mark.parametrize("alpha", [2.0, 2.5, 3.5])
def test_power_law_fit_recovers_pareto_exponent(alpha):
    rng = np.random.default_rng(3)
    # numpy's Pareto(a) + 1 has density a x^-(a+1) on x >= 1, i.e. exponent alpha = a + 1.
    samples = (rng.pareto(alpha - 1.0, size=5000) + 1.0) * 0.7
    fit = fit_power_law(samples)
    assert fit is not None
    assert fit.alpha == pytest.approx(alpha, abs=0.15)
    assert fit.tail >= 10


def test_power_law_fit_finds_the_start_of_a_tail():
    rng = np.random.default_rng(4)
    body = rng.uniform(0.05, 1.0, size=3000)
    tail = rng.pareto(2.0, size=2000) + 1.0  # alpha 3 from x_min = 1
    fit = fit_power_law(np.concatenate([body, tail]))
    assert fit.alpha == pytest.approx(3.0, abs=0.2)
    assert 0.8 <= fit.xmin <= 1.5


def test_power_law_needs_enough_values_and_summary_reports_none():
    assert fit_power_law(np.array([1.0, 2.0, 3.0])) is None
    summary = spectrum_summary(singular_values(np.random.default_rng(5).normal(size=(20, 8))))
    assert summary["alpha"] is None  # 8 eigenvalues: below MIN_EIGENVALUES
    assert summary["effective_rank"] > 1


def test_alpha_is_fitted_on_eigenvalues_of_wtw():
    rng = np.random.default_rng(6)
    w = rng.standard_t(df=2.5, size=(400, 200))
    summary = spectrum_summary(singular_values(w))
    eigen = np.linalg.eigvalsh(w.T @ w)
    direct = fit_power_law(eigen)
    assert summary["alpha"] == pytest.approx(direct.alpha, rel=1e-6)
    assert summary["alpha_tail"] == direct.tail


def test_heads_split_qkv_columns_and_output_rows():
    d_model, heads, d_head = 12, 3, 4
    q = np.arange(d_model * heads * d_head, dtype=float).reshape(d_model, heads * d_head)
    blocks = head_blocks(q, "query", d_head)
    assert len(blocks) == heads
    np.testing.assert_array_equal(blocks[1], q[:, 4:8])
    o = q.T  # [heads * d_head, d_model]
    out_blocks = head_blocks(o, "attn_out", d_head)
    np.testing.assert_array_equal(out_blocks[2], o[8:12, :])
    gqa_keys = head_blocks(np.ones((d_model, 2 * d_head)), "key", d_head)
    assert len(gqa_keys) == 2
    assert head_blocks(np.ones((5, 6)), "mlp_in", 2) is None


def test_fused_qkv_splits_in_thirds():
    w = np.arange(4 * 9).reshape(4, 9)
    parts = split_fused_qkv(w)
    np.testing.assert_array_equal(parts["key"], w[:, 3:6])
    assert split_fused_qkv(np.ones((4, 10))) is None


def test_downsampling_keeps_a_planted_extreme_at_its_block():
    rng = np.random.default_rng(7)
    w = rng.normal(scale=0.1, size=(1536, 384))
    w[1000, 37] = -9.0
    pooled = max_abs_pool(w, limit=96)
    br, bc = block_shape(1536, 384, 96)
    assert pooled.shape == (96, 96) and (br, bc) == (16, 4)
    row, col = np.unravel_index(np.argmax(np.abs(pooled)), pooled.shape)
    assert (row, col) == (1000 // br, 37 // bc)
    assert pooled[row, col] == pytest.approx(-9.0)  # the sign of the extreme is kept


def test_downsampling_takes_the_signed_max_abs_of_every_block_and_handles_ragged_edges():
    rng = np.random.default_rng(8)
    w = rng.normal(size=(100, 7))
    pooled = max_abs_pool(w, limit=8)
    br, bc = block_shape(100, 7, 8)
    assert pooled.shape == (-(-100 // br), -(-7 // bc))
    for r in range(pooled.shape[0]):
        for c in range(pooled.shape[1]):
            block = w[r * br : (r + 1) * br, c * bc : (c + 1) * bc]
            assert pooled[r, c] == pytest.approx(block.flat[np.argmax(np.abs(block))])


def test_small_matrices_are_not_downsampled():
    w = np.random.default_rng(9).normal(size=(32, 64)).astype(np.float32)
    np.testing.assert_array_equal(max_abs_pool(w), w)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (61, 40), (768, 64)])
def test_tall_and_wide_matrices_match_the_lapack_svd(shape):
    """The Gram route (well-conditioned tall/wide matrices) agrees with LAPACK to ~1e-12."""
    w = np.random.default_rng(7).normal(size=shape)
    exact = np.linalg.svd(w, compute_uv=False)
    sigma = singular_values(w)
    assert sigma.shape == exact.shape and np.all(np.diff(sigma) <= 0)
    np.testing.assert_allclose(sigma, exact, rtol=1e-12)
    np.testing.assert_array_equal(sigma.astype(np.float32), exact.astype(np.float32))
    a, b = spectrum_summary(sigma), spectrum_summary(exact)
    assert a["alpha_tail"] == b["alpha_tail"]
    for key in ("effective_rank", "stable_rank", "sigma_max"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)


def test_ill_conditioned_and_square_matrices_get_the_lapack_svd():
    rng = np.random.default_rng(8)
    tall = rng.normal(size=(200, 30))
    tall[:, 0] *= 1e-3  # condition number ~1e3 > GRAM_MAX_CONDITION
    rank_deficient = np.outer(rng.normal(size=90), rng.normal(size=20))
    for w in (tall, rank_deficient, rng.normal(size=(50, 50)), np.zeros((60, 10))):
        np.testing.assert_array_equal(singular_values(w), np.linalg.svd(w, compute_uv=False))
