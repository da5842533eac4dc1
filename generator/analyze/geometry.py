"""Representation geometry: anisotropy (mean cosine between token vectors) and linear CKA.

Anisotropy comes from per-text sums of unit-length token vectors s_t (corpus/unit_token_sum)
and token counts n_t. With S = sum_t s_t and N = sum_t n_t, the mean cosine similarity over
every ordered pair of distinct tokens is exact, with no sampling:
  between texts: (|S|^2 - sum_t |s_t|^2) / (N^2 - sum_t n_t^2)
  within a text: (sum_t |s_t|^2 - N) / (sum_t n_t^2 - N)
The first is the expectation of cos(u, v) for two tokens drawn uniformly at random from
different texts (Ethayarajh 2019's anisotropy baseline); the second the intra-text similarity.

Linear CKA (Kornblith et al. 2019) compares two representations of the same samples:
  CKA(X, Y) = |Yc^T Xc|_F^2 / (|Xc^T Xc|_F |Yc^T Yc|_F), with column-centred Xc, Yc.

Axes: text, layer, d_model; sample, feature.
"""

from __future__ import annotations

import numpy as np


def mean_cosines(unit_sums: np.ndarray, lengths: np.ndarray) -> dict[str, list[float | None]]:
    """Return per layer the mean token-pair cosine between texts and within texts.

    Args:
        unit_sums: [text, layer, d_model] sums of unit-length token vectors per text.
        lengths: [text] tokens per text (the number of vectors summed).

    Returns:
        {"between": [layer], "within": [layer]}; None where no such pair exists.
    """
    sums = np.asarray(unit_sums, dtype=np.float64)
    n = np.asarray(lengths, dtype=np.float64)
    total, squares = n.sum(), np.sum(n**2)
    per_text = np.sum(sums**2, axis=2)  # [text, layer] |s_t|^2
    overall = np.sum(np.sum(sums, axis=0) ** 2, axis=1)  # [layer] |S|^2
    within_sq = per_text.sum(axis=0)  # [layer]
    between_pairs, within_pairs = total**2 - squares, squares - total
    between = (overall - within_sq) / between_pairs if between_pairs > 0 else None
    within = (within_sq - total) / within_pairs if within_pairs > 0 else None
    layers = sums.shape[1]
    return {
        "between": [float(v) for v in between] if between is not None else [None] * layers,
        "within": [float(v) for v in within] if within is not None else [None] * layers,
    }


CONSTANT_TOLERANCE = 1e-10  # centred energy below this share of the total: a constant (float noise)


def varies(x: np.ndarray) -> bool:
    """Return whether [sample, feature] rows differ by more than float rounding noise."""
    x = np.asarray(x, dtype=np.float64)
    total = float(np.sum(x**2))
    return float(np.sum((x - x.mean(axis=0)) ** 2)) > CONSTANT_TOLERANCE * max(total, 1e-300)


def centred_gram(x: np.ndarray) -> np.ndarray:
    """Return the Gram matrix [sample, sample] of column-centred `x` [sample, feature]."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    return x @ x.T


def cka_from_grams(gram_a: np.ndarray, gram_b: np.ndarray) -> float:
    """Return linear CKA from two centred Gram matrices."""
    return float(np.sum(gram_a * gram_b) / (np.linalg.norm(gram_a) * np.linalg.norm(gram_b)))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Return linear CKA of two [sample, feature] representations; NaN if either is constant."""
    if not (varies(x) and varies(y)):
        return float("nan")
    return cka_from_grams(centred_gram(x), centred_gram(y))


def cka_matrix(layers: list[np.ndarray]) -> np.ndarray:
    """Return [layer, layer] linear CKA between every pair of [sample, feature] representations.

    Rows and columns of a constant representation (e.g. the [CLS] vector of the embedding
    layer, the same for every text) are NaN, its diagonal entry included: CKA is undefined.
    """
    grams = [centred_gram(x) if varies(x) else None for x in layers]
    return np.array(
        [
            [cka_from_grams(a, b) if a is not None and b is not None else np.nan for b in grams]
            for a in grams
        ]
    )
