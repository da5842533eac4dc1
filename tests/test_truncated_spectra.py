"""Truncated spectra: randomized top-k σ against the exact SVD; stated intervals hold the truth."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.extract import truncated_spectra
from generator.extract.spectra import effective_rank, stable_rank
from generator.extract.truncated_spectra import (
    effective_rank_interval,
    stable_rank_interval,
    truncated_summary,
)

K = 24  # a small k keeps the exact comparison cheap; the bounds do not depend on k


@pytest.fixture(autouse=True)
def small_rank(monkeypatch):
    """Run the range finder with k = K (ℓ = K + 8) on matrices the exact SVD handles."""
    monkeypatch.setattr(truncated_spectra, "TRUNCATED_RANK", K)
    monkeypatch.setattr(truncated_spectra, "OVERSAMPLE", 8)


def orthogonal(n, rng):
    """Return a Haar-random n×n orthogonal matrix."""
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def matrix(kind: str, seed: int, shape=(120, 200)) -> np.ndarray:
    """Return a seeded test matrix of one family: gaussian, low-rank, heavy-tailed or decaying."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    if kind == "gaussian":  # flat Marchenko–Pastur spectrum: the hardest case for a range finder
        return rng.normal(size=shape)
    if kind == "low_rank":
        return rng.normal(size=(rows, 10)) @ rng.normal(size=(10, cols))
    if kind == "heavy_tailed":  # Student-t entries (ν = 2): a few huge singular values
        return rng.standard_t(2, size=shape)
    r = min(shape)  # power-law decay σ_i = i^-1, as in trained weights' top spectra
    sigma = np.arange(1, r + 1, dtype=np.float64) ** -1.0
    return orthogonal(rows, rng)[:, :r] @ np.diag(sigma) @ orthogonal(cols, rng)[:r, :]


KINDS = ("gaussian", "low_rank", "heavy_tailed", "decaying")


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16), tall=st.booleans())
def test_stated_intervals_contain_the_exact_values(kind, seed, tall):
    w = matrix(kind, seed)
    w = w.T if tall else w
    exact = np.linalg.svd(w, compute_uv=False)
    top, fields = truncated_summary(w, seed=0)
    assert fields["spectrum_method"] == "truncated" and fields["spectrum_rank"] == len(top) == K
    assert fields["spectrum_full_rank"] == min(w.shape)
    # every true σ_i lies in [s_i, √(s_i² + R)] (within float64 rounding)
    slack = 1e-12 * exact[0]
    assert np.all(top <= exact[:K] + slack)
    assert np.all(exact[:K] <= np.sqrt(top**2 + fields["residual_mass"]) + slack)
    assert np.max(exact[:K] - top) <= fields["sigma_error"] + slack
    lo, hi = fields["stable_rank_interval"]
    assert lo <= stable_rank(exact) <= hi
    assert fields["stable_rank"] == pytest.approx(hi / (1 + truncated_spectra.ROUNDING))
    lo, hi = fields["effective_rank_interval"]
    assert lo <= effective_rank(exact) <= hi


# Stated accuracy of the top k (k = 24, ℓ = 32, 4 power iterations) relative to σ_1:
# (first k/2 values, all k values). Measured worst over seeds 1, 2, 7: low rank 7e-16,
# decaying 1e-9 / 2.2e-4, heavy-tailed 2.1e-4 / 3.6e-3, gaussian 4.7e-3 / 1.9e-2.
TOLERANCE = {
    "low_rank": (1e-12, 1e-12),
    "decaying": (1e-8, 1e-3),
    "heavy_tailed": (1e-3, 1e-2),
    "gaussian": (1e-2, 5e-2),  # a flat spectrum has no gap for the range finder to find
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 7])
def test_top_values_match_the_exact_svd_within_the_stated_tolerance(kind, seed):
    w = matrix(kind, seed)
    exact = np.linalg.svd(w, compute_uv=False)
    top, fields = truncated_summary(w, seed=0)
    error = np.abs(top - exact[:K]) / exact[0]
    head, every = TOLERANCE[kind]
    assert error[: K // 2].max() <= head and error.max() <= every
    assert np.max(exact[:K] - top) <= fields["sigma_error"] * (1 + 1e-9)


def test_a_matrix_of_rank_below_k_is_recovered_with_exact_ranks():
    w = matrix("low_rank", 11)
    top, fields = truncated_summary(w, seed=0)
    exact = np.linalg.svd(w, compute_uv=False)
    assert fields["residual_mass"] < 1e-9 * np.sum(exact**2)
    lo, hi = fields["effective_rank_interval"]
    assert hi - lo < 1e-4 * hi  # only the rounding slack of the tail mass is left
    assert lo <= effective_rank(exact) <= hi


def test_the_same_seed_gives_the_same_values():
    w = matrix("heavy_tailed", 5)
    np.testing.assert_array_equal(truncated_summary(w, 0)[0], truncated_summary(w, 0)[0])


def test_interval_helpers_on_known_spectra():
    # all-equal tail: the upper end is reached exactly by 4 values of 1 plus 6 tail values of 1
    sigma = np.ones(10)
    lo, hi = effective_rank_interval(sigma[:4], tail_mass=6.0, count=6)
    assert lo == pytest.approx(4.0, rel=1e-8) and hi == pytest.approx(10.0, rel=1e-8)
    lo, hi = stable_rank_interval(total=10.0, top=1.0, residual=0.0)
    assert lo == pytest.approx(10.0) and hi == pytest.approx(10.0)
    assert effective_rank_interval(np.zeros(3), 0.0, 5) == [0.0, 0.0]
