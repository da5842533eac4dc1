"""2-D projections: JAX PCA against scikit-learn, seeded t-SNE, Procrustes alignment."""

import numpy as np
import pytest

from generator.analyze import workers
from generator.analyze.pca import fit_pca
from generator.analyze.projections import (
    fit_tsne,
    layer_maps,
    many_layer_maps,
    procrustes,
    rounded,
    tsne,
)


def anisotropic(n=200, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)) * np.linspace(5, 0.2, dim) + 3.0


def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    x = anisotropic()
    ours = fit_pca(x, n_components=5)
    ref = PCA(n_components=5, svd_solver="full").fit(x)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, ref.explained_variance_ratio_, atol=1e-4
    )
    # same sign convention as scikit-learn: the coordinates agree, not only up to sign
    np.testing.assert_allclose(
        ours.transform(x), ref.transform(x), atol=1e-3 * np.abs(ref.transform(x)).max()
    )


def test_pca_signs_are_fixed_and_results_repeat():
    x = anisotropic(seed=3)
    first, second = fit_pca(x), fit_pca(x)
    assert np.array_equal(first.components, second.components)
    pivots = first.components[np.arange(2), np.argmax(np.abs(first.components), axis=1)]
    assert np.all(pivots > 0)
    flipped = fit_pca(-x)  # mirrored data: same axes, signs fixed the same way
    np.testing.assert_allclose(flipped.components, first.components, atol=1e-5)


def test_pca_bits_do_not_depend_on_the_blas_threads():
    """JAX's CPU SVD calls LAPACK, whose bits depend on the BLAS thread count: the extraction
    (every thread) and the analysis (one) must fit the same PCA, since the t-SNE jobs the
    extraction starts early are found again by their PCA initialisation (prefetch.job_key)."""
    from threadpoolctl import threadpool_limits

    x = anisotropic(n=500, dim=384, seed=4)
    with threadpool_limits(limits=1):
        one = fit_pca(x)
    for threads in (2, 4, 1):  # one thread again last: no state left over from the others
        with threadpool_limits(limits=threads):
            other = fit_pca(x)
        assert other.components.tobytes() == one.components.tobytes(), threads


def test_pca_of_low_rank_data_pads_with_zero_components():
    pca = fit_pca(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))
    assert pca.explained_variance_ratio.tolist() == pytest.approx([1.0, 0.0])
    assert np.all(pca.components[1] == 0)
    assert fit_pca(np.ones((4, 3))).explained_variance_ratio.tolist() == [0.0, 0.0]


def test_procrustes_recovers_rotation_reflection_scale_and_shift():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reflect = np.diag([1.0, -1.0])
    source = (target @ rotation @ reflect) * 3.5 + np.array([10.0, -4.0])
    np.testing.assert_allclose(procrustes(source, target), target, atol=1e-10)


def test_tsne_is_seeded_and_needs_enough_samples():
    x = anisotropic(n=60)
    init = fit_pca(x).transform(x)
    first, second = fit_tsne(x, init), fit_tsne(x, init)  # two fits, not a fit read back
    assert first.shape == (60, 2) and first.tobytes() == second.tobytes()
    assert tsne(x[:5], init[:5]) is None


def test_layer_maps_share_the_reference_frame():
    x = anisotropic(n=40)
    moved = x + np.random.default_rng(1).normal(scale=0.5, size=x.shape)
    maps = layer_maps({"early": moved, "same": x.copy(), "final": x}, reference="final")
    np.testing.assert_array_equal(maps["same"]["pca"], maps["final"]["pca"])
    np.testing.assert_allclose(maps["same"]["tsne"], maps["final"]["tsne"], atol=1e-9)
    np.testing.assert_allclose(maps["final"]["pca_explained"], fit_pca(x).explained_variance_ratio)
    # the early checkpoint is projected on the final axes: coordinates differ, frame does not
    np.testing.assert_allclose(maps["early"]["pca"], fit_pca(x).transform(moved))
    assert 0 < sum(maps["early"]["pca_explained"]) <= 1


def test_pooled_tsne_fits_equal_serial_ones(monkeypatch, tmp_path):
    layers = [
        {"early": anisotropic(n=60, seed=s + 10), "final": anisotropic(n=60, seed=s)}
        for s in range(2)
    ]
    pools = []

    class Spy(workers.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(workers, "ProcessPoolExecutor", Spy)
    monkeypatch.setenv(workers.WORKERS_ENV, "1")
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "serial"))  # each fits its own maps
    serial = many_layer_maps(layers, reference="final")
    assert pools == []  # MODELATLAS_WORKERS=1: in this process
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    monkeypatch.setenv("MODELATLAS_CACHE", str(tmp_path / "pooled"))
    pooled = many_layer_maps(layers, reference="final")
    assert len(pools) == 1  # the four fits went to one pool of workers
    assert [list(layer) for layer in pooled] == [["early", "final"]] * 2
    for ours, theirs in zip(serial, pooled, strict=True):
        for label in ours:
            assert ours[label]["tsne"] is not None
            for key in ("pca", "tsne"):
                assert ours[label][key].tobytes() == theirs[label][key].tobytes(), (label, key)


def test_rounding_keeps_four_significant_digits():
    assert rounded(np.array([123456.0, 0.000123456, -1.23456])) == [123500.0, 0.0001235, -1.235]
