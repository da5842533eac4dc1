"""2-D maps of embeddings: PCA (JAX, see pca.py) and t-SNE (scikit-learn), aligned across checkpoints.

Alignment: the PCA of the reference (the card's own model) is fitted once per layer and pooling
and every checkpoint is projected on its mean and axes, so a point moves only because its vector
moved. t-SNE is run per checkpoint (seeded, initialised from that checkpoint's PCA coordinates
in the shared basis) and then mapped onto the reference's t-SNE map by orthogonal Procrustes
(rotation/reflection, a scale that keeps the reference's spread, and a translation), since
t-SNE maps share no frame. The fits of many layers are independent and run together in worker
processes (workers.py); alignment follows in this process.

Axes: sample (text or token), feature (d_model), coordinate (x, y).
"""

from __future__ import annotations

import numpy as np

from generator.analyze.pca import PCA, fit_pca

TSNE_PERPLEXITY = 30.0
TSNE_ITERATIONS = 500  # scikit-learn's minimum is 250; 250 of them are early exaggeration
TSNE_SEED = 0
MIN_TSNE_SAMPLES = 8
# fewer samples in all: t-SNE fits run in-process (starting workers costs ~1 s; break-even on 2 cores)
MIN_POOLED_SAMPLES = 2000
SIGNIFICANT_DIGITS = 4  # stored coordinates: identical bytes across rebuilds, small tables


def worth_workers(samples: int) -> bool:
    """Tell whether jobs over `samples` vectors in all repay starting worker processes."""
    return samples >= MIN_POOLED_SAMPLES


def rounded(values: np.ndarray) -> list[float]:
    """Return `values` as a list of floats rounded to SIGNIFICANT_DIGITS significant digits."""
    return [float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in np.asarray(values, dtype=np.float64)]


def captured_variance(pca: PCA, x: np.ndarray) -> list[float]:
    """Return the share of the variance of `x` (about its own mean) along each PCA axis."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0)
    total = float(np.sum(centred**2))
    if total == 0:
        return [0.0] * len(pca.components)
    return [float(np.sum((centred @ axis) ** 2) / total) for axis in pca.components]


def tsne(x: np.ndarray, init: np.ndarray) -> np.ndarray | None:
    """Embed [sample, feature] rows in 2-D with seeded Barnes-Hut t-SNE; None if too few rows.

    `init` ([sample, 2], e.g. PCA coordinates) is rescaled as scikit-learn does for
    init='pca' (first coordinate's standard deviation 1e-4). One thread, fixed seed: the same
    input gives the same bytes, so a map fitted before is read back (map_cache.py).
    """
    from generator.analyze.map_cache import remembered

    return remembered(fit_tsne, x, init)


def fit_tsne(x: np.ndarray, init: np.ndarray) -> np.ndarray | None:
    """Fit `tsne(x, init)` (not cached)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(x, dtype=np.float64)  # the same layout in-process and in a worker
    if len(x) < MIN_TSNE_SAMPLES or not np.any(np.ptp(x, axis=0) > 0):
        return None
    init = np.asarray(init, dtype=np.float64)
    scale = float(np.std(init[:, 0]))
    init = init / scale * 1e-4 if scale > 0 else np.zeros_like(init)
    if not np.any(init):
        init = np.random.default_rng(TSNE_SEED).normal(scale=1e-4, size=init.shape)
    model = TSNE(
        n_components=2,
        perplexity=min(TSNE_PERPLEXITY, (len(x) - 1) / 3),
        max_iter=TSNE_ITERATIONS,
        init=init.astype(np.float32),
        learning_rate="auto",
        random_state=TSNE_SEED,
        method="barnes_hut",
    )
    with threadpool_limits(limits=1):
        return np.asarray(model.fit_transform(x), dtype=np.float64)


def procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map `source` [sample, 2] onto `target` by rotation/reflection, uniform scale and shift.

    The rotation is the orthogonal Procrustes solution; the scale makes the spread (root mean
    square distance to the centre) equal to the target's, so a map that matches the target
    poorly is not shrunk towards its centre as a least-squares scale would do.
    """
    from scipy.linalg import orthogonal_procrustes

    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    a = source - source.mean(axis=0)
    b = target - target.mean(axis=0)
    norm = float(np.sum(a**2))
    if norm == 0:
        return np.tile(target.mean(axis=0), (len(source), 1))
    rotation, _ = orthogonal_procrustes(a, b)
    scale = np.sqrt(float(np.sum(b**2)) / norm)
    return a @ rotation * scale + target.mean(axis=0)


def pca_maps(embeddings: dict[str, np.ndarray], reference: str) -> dict[str, dict]:
    """Return per checkpoint {"pca", "pca_explained"} in the reference's PCA basis."""
    pca = fit_pca(embeddings[reference])
    return {
        label: {
            "pca": pca.transform(x),
            "pca_explained": (
                pca.explained_variance_ratio.tolist()
                if label == reference
                else captured_variance(pca, x)
            ),
        }
        for label, x in embeddings.items()
    }


def align_tsne(maps: dict[str, dict], reference: str) -> None:
    """Map every checkpoint's "tsne" onto the reference's in place (procrustes)."""
    target = maps[reference]["tsne"]
    if target is not None:
        for label, item in maps.items():
            if label != reference and item["tsne"] is not None:
                item["tsne"] = procrustes(item["tsne"], target)


def layer_maps(embeddings: dict[str, np.ndarray], reference: str) -> dict[str, dict]:
    """Project one layer's embeddings of every checkpoint in 2-D, aligned to the reference.

    Args:
        embeddings: checkpoint label -> [sample, feature] vectors of one layer and pooling.
        reference: the label whose PCA basis and t-SNE map the others are aligned to.

    Returns:
        checkpoint label -> {"pca": [sample, 2], "pca_explained": [2], "tsne": [sample, 2] or None}.
    """
    return many_layer_maps([embeddings], reference)[0]


def many_layer_maps(layers: list[dict[str, np.ndarray]], reference: str) -> list[dict[str, dict]]:
    """Return `layer_maps` of several layers, fitting all their t-SNE maps in one batch.

    The fits are independent, so they run in worker processes (workers.run_jobs) when there
    are enough samples to repay starting them; each fit is the same single-threaded, seeded
    call either way, so the maps are byte-identical. Alignment follows, in this process.

    Args:
        layers: per layer (and pooling), checkpoint label -> [sample, feature] vectors.
        reference: the label whose PCA basis and t-SNE map the others are aligned to.

    Returns:
        per layer, the maps `layer_maps` returns.
    """
    maps = [pca_maps(embeddings, reference) for embeddings in layers]
    jobs = [
        (embeddings[label], item["pca"])
        for embeddings, layer in zip(layers, maps, strict=True)
        for label, item in layer.items()
    ]
    fits = iter(fitted(jobs))
    for layer in maps:
        for item in layer.values():
            item["tsne"] = next(fits)
        align_tsne(layer, reference)
    return maps


def reference_jobs(layers: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the t-SNE jobs `many_layer_maps` makes for the reference model's own maps.

    layers: per layer (and pooling), the reference's [sample, feature] vectors. Each job is
    (vectors, their PCA coordinates in their own basis), computed as `pca_maps` does.
    """
    return [(x, pca_maps({REFERENCE_KEY: x}, REFERENCE_KEY)[REFERENCE_KEY]["pca"]) for x in layers]


REFERENCE_KEY = "reference"


def fitted(jobs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray | None]:
    """Return `tsne(x, init)` of every job, in order: those the extraction started early
    (prefetch.py) taken from there, the rest run now, in worker processes when there are
    enough samples to repay starting them."""
    from generator.analyze.prefetch import results

    return results(tsne, jobs, small=not worth_workers(sum(len(x) for x, _ in jobs)))
