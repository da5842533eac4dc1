"""Anisotropy from unit-vector sums and linear CKA, against brute force and known properties."""

import numpy as np
import pytest

from generator.analyze.geometry import cka_matrix, linear_cka, mean_cosines


def brute_force_cosines(texts):
    """Mean cosine over ordered pairs of distinct tokens, between and within texts."""
    units = [t / np.linalg.norm(t, axis=1, keepdims=True) for t in texts]
    between, within = [], []
    for i, a in enumerate(units):
        for j, b in enumerate(units):
            sims = a @ b.T
            if i == j:
                within += sims[~np.eye(len(a), dtype=bool)].tolist()
            else:
                between += sims.ravel().tolist()
    return np.mean(between), np.mean(within)


def test_mean_cosines_match_brute_force():
    rng = np.random.default_rng(0)
    layers = 3
    texts = [rng.normal(size=(n, layers, 8)) + 0.7 for n in (1, 4, 7, 2, 5)]
    sums = np.stack([(t / np.linalg.norm(t, axis=2, keepdims=True)).sum(0) for t in texts])
    result = mean_cosines(sums, np.array([len(t) for t in texts]))
    for layer in range(layers):
        between, within = brute_force_cosines([t[:, layer] for t in texts])
        assert result["between"][layer] == pytest.approx(between, abs=1e-12)
        assert result["within"][layer] == pytest.approx(within, abs=1e-12)


def test_mean_cosines_without_pairs_are_none():
    single = mean_cosines(np.full((3, 2, 4), 0.5), np.ones(3))  # one unit vector per text
    assert single["within"] == [None, None] and single["between"][0] == pytest.approx(1.0)


def hsic_cka(x, y):
    """Linear CKA through HSIC with the centring matrix H (Kornblith et al. 2019, eq. 1-2)."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_linear_cka_matches_hsic_and_its_invariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6))
    y = x @ rng.normal(size=(6, 4)) + 0.5 * rng.normal(size=(30, 4))
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), abs=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(x, 3.0 * x @ q + 7.0) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))
    matrix = cka_matrix([x, y, rng.normal(size=(30, 5))])
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert np.all((matrix >= 0) & (matrix <= 1 + 1e-12))


def test_cka_of_a_constant_representation_is_undefined():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    constant = np.ones((20, 4)) + rng.normal(scale=1e-8, size=(20, 4))  # float noise only
    assert np.isnan(linear_cka(x, constant))
    matrix = cka_matrix([constant, x])
    assert np.isnan(matrix[0]).all() and np.isnan(matrix[:, 0]).all()
    assert matrix[1, 1] == pytest.approx(1.0)
