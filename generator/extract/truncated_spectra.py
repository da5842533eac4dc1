"""Top singular values of large weight matrices, with stated error bounds.

Above the exact-SVD cap (generator/extract/weights.py) a matrix W [rows, cols] gets its top
`TRUNCATED_RANK` singular values from a seeded randomized range finder (Halko, Martinsson &
Tropp 2011, Algorithm 4.4 via scikit-learn's `randomized_svd`): a Gaussian test matrix of
ℓ = k + `OVERSAMPLE` columns, `POWER_ITERATIONS` normalised power iterations, then the exact SVD
of B = QᵀW [ℓ, cols]. All ℓ singular values s_i of B are kept, so the residual mass is exact:

    R = ‖W‖_F² − ‖B‖_F² = ‖(I − QQᵀ)W‖_F² ≥ 0

and, because WᵀW = BᵀB + EᵀE with E = (I − QQᵀ)W (Weyl, interlacing), every true singular value
lies in  s_i ≤ σ_i ≤ √(s_i² + R)  for i ≤ ℓ. From these:

- stable rank ‖W‖_F² / σ_1² ∈ [‖W‖_F² / (s_1² + R), ‖W‖_F² / s_1²] (rigorous);
- effective rank exp H(σ / Σσ): the top k values are taken as computed (s_i), and the unknown
  tail of r − k values (r = min(rows, cols)) carries a squared mass T ≤ ‖W‖_F² − Σ_{i≤k} s_i².
  A tail of zeros gives the lower end (adding values no larger than the smallest already there
  only raises the entropy); the upper end spreads the largest L1 mass the tail can have,
  √((r − k)·T), evenly over r − k values, or less where less raises the entropy more. The point
  estimate is the value at the lower end (top k only).

The power-law α is then fitted on the top k eigenvalues only (the tail of the density is its
largest eigenvalues, which is what the fit reads; the fit's x_min is chosen among them).
"""

from __future__ import annotations

import math

import numpy as np

ROUNDING = 1e-9  # relative widening of the stated intervals: float64 rounding of the sums
TRUNCATED_RANK = 256  # k: singular values reported for a matrix above the exact-SVD cap
OVERSAMPLE = 16  # extra columns of the range finder (ℓ = k + OVERSAMPLE)
POWER_ITERATIONS = 4  # normalised power iterations (sharpen a slowly decaying spectrum)


def randomized_top_singular_values(
    matrix: np.ndarray, seed: int, total: float | None = None
) -> tuple[np.ndarray, float, float]:
    """Return (the ℓ singular values of QᵀW, descending; ‖W‖_F²; the residual mass R).

    Args:
        matrix: W [rows, cols], any float dtype (computed in float64).
        seed: seed of the Gaussian test matrix.
        total: ‖W‖_F² when already known (saves a temporary the size of W).

    Returns:
        float64 s [ℓ] with ℓ = min(TRUNCATED_RANK + OVERSAMPLE, rows, cols), the exact
        ‖W‖_F², and R = ‖W‖_F² − Σ s_i² clipped at 0 plus the float64 rounding slack of the
        two sums.
    """
    from sklearn.utils.extmath import randomized_svd

    wide = np.asarray(matrix, dtype=np.float64)
    width = min(TRUNCATED_RANK + OVERSAMPLE, *wide.shape)
    _, sigma, _ = randomized_svd(
        wide,
        width,
        n_oversamples=0,
        n_iter=POWER_ITERATIONS,
        random_state=seed,
    )
    total = float(np.sum(wide**2)) if total is None else float(total)
    slack = 1e-12 * total  # rounding of two float64 sums of squares
    return sigma, total, max(total - float(np.sum(sigma**2)), 0.0) + slack


def stable_rank_interval(total: float, top: float, residual: float) -> list[float]:
    """Return [lo, hi] of ‖W‖_F² / σ_1² given s_1 ≤ σ_1 ≤ √(s_1² + R)."""
    if top <= 0:
        return [0.0, 0.0]
    return _widened(total / (top**2 + residual), total / top**2)


def _widened(lo: float, hi: float) -> list[float]:
    """Return [lo, hi] widened by the relative float64 rounding allowance."""
    return [lo * (1.0 - ROUNDING), hi * (1.0 + ROUNDING)]


def _tail_entropy(top: np.ndarray, tail_l1: float, count: int) -> float:
    """Return the entropy of σ / Σσ for `top` plus `count` equal tail values summing to tail_l1."""
    total = top.sum() + tail_l1
    p = top[top > 0] / total
    entropy = -np.sum(p * np.log(p))
    if tail_l1 > 0 and count > 0:
        share = tail_l1 / total
        entropy += -share * math.log(share / count)
    return float(entropy)


def effective_rank_interval(top: np.ndarray, tail_mass: float, count: int) -> list[float]:
    """Return [lo, hi] of the effective rank given the top values and the tail's squared mass.

    Args:
        top: the top k singular values (descending).
        tail_mass: an upper bound of Σ_{i>k} σ_i².
        count: r − k, the number of tail values.
    """
    top = np.asarray(top, dtype=np.float64)
    if top.sum() <= 0:
        return [0.0, 0.0]
    low = math.exp(_tail_entropy(top, 0.0, 0))
    if count <= 0 or tail_mass <= 0:
        return _widened(low, low)
    most = math.sqrt(count * tail_mass)  # the largest L1 mass of `count` values with this L2
    p = top[top > 0] / top.sum()
    top_entropy = float(-np.sum(p * np.log(p)))
    # The entropy of (top, tail share t spread evenly) peaks at t* = count / (count + e^H_top).
    best_share = count / (count + math.exp(top_entropy))
    best_l1 = top.sum() * best_share / (1.0 - best_share)
    return _widened(low, math.exp(_tail_entropy(top, min(most, best_l1), count)))


def truncated_summary(
    matrix: np.ndarray, seed: int, total: float | None = None
) -> tuple[np.ndarray, dict]:
    """Return (top-k σ as float64, the manifest fields stating the truncation and its error).

    Fields: `spectrum_method` "truncated", `spectrum_rank` k, `spectrum_full_rank` r,
    `residual_mass` R, `sigma_error` max_i (√(s_i² + R) − s_i) over the top k,
    `stable_rank_interval`, `effective_rank_interval`, and `stable_rank` ‖W‖_F² / s_1² (the
    exact ‖W‖_F² over the computed σ_1, the interval's upper end). `total` is ‖W‖_F² when
    known (the tensor statistics have it).
    """
    sigma, total, residual = randomized_top_singular_values(matrix, seed, total)
    k = min(TRUNCATED_RANK, len(sigma))
    top = sigma[:k]
    full_rank = int(min(matrix.shape))
    tail = max(total - float(np.sum(top**2)), 0.0) + 1e-12 * total  # Σ_{i>k} σ_i² at most
    fields = {
        "spectrum_method": "truncated",
        "spectrum_rank": k,
        "spectrum_full_rank": full_rank,
        "residual_mass": residual,
        "sigma_error": float(np.max(np.sqrt(top**2 + residual) - top)) if k else 0.0,
        "stable_rank_interval": stable_rank_interval(total, float(top[0]), residual),
        "effective_rank_interval": effective_rank_interval(top, tail, full_rank - k),
        "stable_rank": total / float(top[0]) ** 2 if k and top[0] > 0 else 0.0,
    }
    return top, fields
