"""t-SNE implementations on the atlas's own inputs: scikit-learn (what analyze runs) vs openTSNE.

`python -m benchmarks.tsne ARTIFACTS/NAME [--reps 3]` (by hand; openTSNE must be installed):
one layer's mean-pooled sequence embeddings of the card ([text, d_model], the representation
maps' input; layer 3 of MiniLM: 500 × 384) and the 2,000-token embedding sample (the embedding
map's input), each fitted one-threaded with the settings of `generator/analyze/projections.py`
(Barnes-Hut, perplexity min(30, (n−1)/3), 500 iterations of which 250 early exaggeration,
PCA initialisation scaled to std 1e-4, seed 0) by scikit-learn, by openTSNE's Barnes-Hut and by
openTSNE's FFT-accelerated interpolation (the same schedule and exaggeration 12; learning rate
max(n/12, 200), the step of scikit-learn's 'auto' max(n/48, 50), whose gradient leaves out
t-SNE's factor 4). Reported: wall time (median of the repetitions), the final
KL divergence (computed the same way for every result, from openTSNE's perplexity affinities)
and trustworthiness (k = 10, scikit-learn), and whether two runs give the same bytes. Times are
process CPU seconds (robust while other processes load the machine; every fit is one-threaded)
with the wall seconds beside them; contenders alternate within each repetition.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from generator.analyze.projections import TSNE_ITERATIONS, TSNE_PERPLEXITY, TSNE_SEED, fit_tsne

EXAGGERATION_ITERATIONS = 250  # scikit-learn's fixed early-exaggeration phase


def scaled_pca(x: np.ndarray) -> np.ndarray:
    """Return the top-2 PCA coordinates scaled as the atlas does (first axis std 1e-4)."""
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pca = centred @ vt[:2].T
    return pca / np.std(pca[:, 0]) * 1e-4


def open_tsne(x: np.ndarray, init: np.ndarray, method: str) -> np.ndarray:
    """Fit openTSNE with the atlas's schedule; `method` is "bh" or "fft"."""
    from openTSNE import TSNE

    n = len(x)
    model = TSNE(
        n_components=2,
        perplexity=min(TSNE_PERPLEXITY, (n - 1) / 3),
        n_iter=TSNE_ITERATIONS - EXAGGERATION_ITERATIONS,
        early_exaggeration_iter=EXAGGERATION_ITERATIONS,
        early_exaggeration=12.0,
        learning_rate=max(n / 12.0, 200.0),
        initialization=init,
        negative_gradient_method=method,
        n_jobs=1,
        random_state=TSNE_SEED,
        verbose=False,
    )
    return np.asarray(model.fit(x), dtype=np.float64)


def kl_divergence(x: np.ndarray, y: np.ndarray) -> float:
    """Return the exact t-SNE objective KL(P || Q) of embedding `y` (P from openTSNE's affinities)."""
    from openTSNE.affinity import PerplexityBasedNN

    n = len(x)
    p = PerplexityBasedNN(
        x, perplexity=min(TSNE_PERPLEXITY, (n - 1) / 3), n_jobs=1, random_state=0, verbose=False
    ).P.toarray()
    d = np.sum((y[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    q = 1.0 / (1.0 + d)
    np.fill_diagonal(q, 0.0)
    q /= q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))))


def measure(x: np.ndarray, reps: int) -> dict[str, dict]:
    """Time every implementation on `x`; return per name: seconds, KL, trustworthiness, repeatable."""
    from sklearn.manifold import trustworthiness
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(x, dtype=np.float64)
    init = scaled_pca(x)
    contenders = {
        "scikit-learn Barnes-Hut (atlas)": lambda: fit_tsne(x, init),  # never the cache
        "openTSNE Barnes-Hut": lambda: open_tsne(x, init, "bh"),
        "openTSNE FFT": lambda: open_tsne(x, init, "fft"),
    }
    cpu = {name: [] for name in contenders}
    wall = {name: [] for name in contenders}
    results = {name: [] for name in contenders}
    with threadpool_limits(limits=1):
        for rep in range(reps):
            for name in list(contenders)[:: -1 if rep % 2 else 1]:
                started, started_cpu = time.perf_counter(), time.process_time()
                results[name].append(contenders[name]())
                cpu[name].append(time.process_time() - started_cpu)
                wall[name].append(time.perf_counter() - started)
    out = {}
    for name, runs in results.items():
        y = runs[0]
        out[name] = {
            "cpu_seconds": statistics.median(cpu[name]),
            "seconds": statistics.median(wall[name]),
            "kl": kl_divergence(x, y),
            "trustworthiness": float(trustworthiness(x, y, n_neighbors=10)),
            "repeatable": all(np.array_equal(y, r) for r in runs[1:]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure on one artifact folder's inputs and print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tsne", description=__doc__)
    parser.add_argument("artifacts", type=Path, help="ARTIFACTS/NAME of a built card")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    inputs = {
        "pooled_mean layer": np.load(args.artifacts / "corpus" / "pooled_mean.npy")[:, args.layer],
        "embedding sample": np.load(args.artifacts / "weights" / "embedding_sample.npy"),
    }
    print(
        "| input | n × d | implementation | CPU s | wall s | KL(P‖Q) | trustworthiness "
        "| repeatable |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, x in inputs.items():
        for name, r in measure(x, args.reps).items():
            print(
                f"| {label} | {x.shape[0]} × {x.shape[1]} | {name} | {r['cpu_seconds']:.2f} "
                f"| {r['seconds']:.2f} "
                f"| {r['kl']:.3f} | {r['trustworthiness']:.4f} | {r['repeatable']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
