"""Principal component analysis with JAX's SVD, with deterministic component signs.

This is the one module of the analyze stage that uses JAX (imported lazily, on the CPU device),
a documented exception to "analyze is numpy/scikit-learn" (docs/artifacts.md). The data are
centred in float64 with numpy, the SVD runs in float32 in JAX, and each component's sign is
fixed so that its largest-magnitude loading is positive (scikit-learn's `svd_flip` convention
with `u_based_decision=False`), so the same input always gives the same coordinates. The SVD
runs with one BLAS thread: JAX's CPU SVD calls LAPACK, whose bits depend on the BLAS thread
count, and the extraction (which fits the reference's maps early, analyze/prefetch.py) and the
analysis (one BLAS thread) must agree to the bit.

Axes: sample (rows of the input), feature (its columns), component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANK_TOLERANCE = 1e-5  # singular values below this share of the largest count as zero (float32)


@dataclass(frozen=True)
class PCA:
    """A fitted projection: mean [feature], components [component, feature], variance ratios."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray  # [component] share of the fitted data's variance

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project [sample, feature] rows onto the components -> [sample, component] float64."""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T


def _svd(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return singular values and right singular vectors of `centred`, computed by JAX with one
    BLAS thread (the same bits in any process, whatever its thread settings)."""
    import jax
    import jax.numpy as jnp
    import scipy.linalg.cython_lapack  # noqa: F401  JAX's LAPACK: loaded before it is limited
    from threadpoolctl import threadpool_limits

    try:
        device = jax.devices("cpu")[0]
    except RuntimeError:  # a JAX build without the CPU platform: use the default device
        device = jax.devices()[0]
    with jax.default_device(device), threadpool_limits(limits=1):
        _, s, vt = jnp.linalg.svd(jnp.asarray(centred, dtype=jnp.float32), full_matrices=False)
        # dispatch is asynchronous: the SVD must have run before the limit is lifted
        return np.asarray(s, dtype=np.float64), np.asarray(vt, dtype=np.float64)


def fit_pca(x: np.ndarray, n_components: int = 2) -> PCA:
    """Fit PCA on [sample, feature] rows; components beyond the data's rank are all-zero.

    Args:
        x: the data, one row per sample.
        n_components: how many leading components to keep.

    Returns:
        The fitted PCA; `explained_variance_ratio` matches scikit-learn's.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    total = float(np.sum(centred**2))
    components = np.zeros((n_components, x.shape[1]))
    ratios = np.zeros(n_components)
    if total > 0 and len(x) > 1:
        s, vt = _svd(centred)
        # directions of (numerically) zero variance are arbitrary: leave them all-zero
        k = min(n_components, int(np.sum(s > s[0] * RANK_TOLERANCE)))
        vt = vt[:k]
        pivots = vt[np.arange(k), np.argmax(np.abs(vt), axis=1)]
        components[:k] = vt * np.where(pivots < 0, -1.0, 1.0)[:, None]
        ratios[:k] = s[:k] ** 2 / total
    return PCA(mean=mean, components=components, explained_variance_ratio=ratios)
