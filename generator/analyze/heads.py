"""Per-head attention metrics over the corpus: tidy tables, per-layer summaries, head clusters.

Input: `corpus/head_metrics` [text, layer, head, metric] (per text: the mean over its queries)
with the metric names in `manifest["attention"]["head_metrics"]`. Every metric is averaged over
texts (NaN, "not applicable", skipped), except `nonzero_max`, which takes the maximum.

Tables:
  head_metrics        one row per layer x head: {layer, head, METRIC...}, None where undefined
  head_layer_summary  one row per layer x metric: {layer, metric, mean, min, max} over heads
  head_clusters       one row per layer x head: {layer, head, x, y, cluster} (PCA map, clusters)
  head_cluster_info   {metrics, explained, clusters, silhouette, profiles[{cluster, heads, summary}]}
Encoder-decoders: the tables above are the encoder's self-attention (the corpus pass runs the
encoder); the decoder has targets only for the showcase, so from `showcase/decoder_head_metrics`
and `showcase/cross_head_metrics` [example, layer, head, metric] (combined over the examples as
over texts):
  head_metrics_decoder, head_metrics_cross   one row per decoder layer x head, as head_metrics
  (cross-attention: distance, previous, next and self are None, undefined across two sequences)
"""

from __future__ import annotations

import warnings

import numpy as np

from generator.artifacts import Artifacts

MAX_OVER_TEXTS = ("nonzero_max",)
MAX_CLUSTERS = 8
SEQ2SEQ_KINDS = ("decoder", "cross")  # showcase metrics of an encoder-decoder's decoder side
DIGITS = 5

# name -> (short label, one-sentence meaning); {threshold} is the sparsity threshold.
DEFINITIONS: dict[str, tuple[str, str]] = {
    "entropy": (
        "entropy",
        "How spread out a query's attention is, in nats (0: all weight on one key).",
    ),
    "normalized_entropy": (
        "normalised entropy",
        "Entropy divided by the log of the number of keys the query can see: 0 for one key, "
        "1 for uniform attention (queries that see a single key are skipped).",
    ),
    "kl_uniform": (
        "KL from uniform",
        "Kullback-Leibler divergence of the attention from the uniform distribution over the "
        "visible keys, in nats: how far the head is from averaging everything.",
    ),
    "sparsity": (
        "sparsity",
        "Share of the visible keys that get a weight below {threshold}.",
    ),
    "nonzero_mean": (
        "keys ≥ {threshold} (mean)",
        "Number of keys a query gives at least {threshold} of its attention, on average.",
    ),
    "nonzero_max": (
        "keys ≥ {threshold} (max)",
        "The largest such count seen for any query in the corpus.",
    ),
    "distance": (
        "mean distance",
        "Attention-weighted distance |query − key| in tokens: how far the head looks.",
    ),
    "first_token": (
        "first token",
        "Share of attention on the first token of the text ([CLS] or BOS for most models).",
    ),
    "special": (
        "special tokens",
        "Share of attention on the tokenizer's special tokens ([CLS], [SEP], BOS, EOS, …): "
        "high values mark heads that park attention on a sink.",
    ),
    "previous": (
        "previous token",
        "Weight on the token just before the query.",
    ),
    "next": (
        "next token",
        "Weight on the token just after the query (not applicable to causal models).",
    ),
    "self": (
        "self",
        "Weight a token puts on itself (the diagonal of the attention map).",
    ),
    "max_weight": (
        "max weight",
        "The largest single weight of a query, on average: 1 for a head that always picks one key.",
    ),
}


def definitions(metrics: list[str], threshold: float) -> list[dict]:
    """Return [{name, label, definition}] for the given metrics, in their order."""
    rows = []
    for name in metrics:
        label, meaning = DEFINITIONS.get(name, (name, ""))
        rows.append(
            {
                "name": name,
                "label": label.format(threshold=threshold),
                "definition": meaning.format(threshold=threshold),
            }
        )
    return rows


def _clean(value: float) -> float | None:
    """Round a float for JSON; NaN becomes None."""
    return None if not np.isfinite(value) else round(float(value), DIGITS)


def aggregate_texts(per_text: np.ndarray, metrics: list[str]) -> np.ndarray:
    """Combine [text, layer, head, metric] over texts -> [layer, head, metric] (NaN-aware)."""
    per_text = np.asarray(per_text, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mean = np.nanmean(per_text, axis=0)
        largest = np.nanmax(per_text, axis=0) if len(per_text) else mean
    out = mean.copy()
    for i, name in enumerate(metrics):
        if name in MAX_OVER_TEXTS:
            out[..., i] = largest[..., i]
    return out


def head_rows(values: np.ndarray, metrics: list[str]) -> list[dict]:
    """Return one row {layer, head, METRIC...} per head of a [layer, head, metric] array."""
    layers, heads, _ = values.shape
    return [
        {
            "layer": layer,
            "head": head,
            **{name: _clean(values[layer, head, i]) for i, name in enumerate(metrics)},
        }
        for layer in range(layers)
        for head in range(heads)
    ]


def layer_summary(values: np.ndarray, metrics: list[str]) -> list[dict]:
    """Return rows {layer, metric, mean, min, max}: each metric over the heads of each layer."""
    rows = []
    for layer in range(values.shape[0]):
        for i, name in enumerate(metrics):
            column = values[layer, :, i]
            column = column[np.isfinite(column)]
            if not column.size:
                continue
            rows.append(
                {
                    "layer": layer,
                    "metric": name,
                    "mean": _clean(column.mean()),
                    "min": _clean(column.min()),
                    "max": _clean(column.max()),
                }
            )
    return rows


def standardise(features: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Z-score [head, metric] columns; drop columns with a NaN or no spread. Returns (z, kept)."""
    keep = [
        i
        for i in range(features.shape[1])
        if np.all(np.isfinite(features[:, i])) and np.std(features[:, i]) > 1e-12
    ]
    kept = features[:, keep]
    z = (kept - kept.mean(axis=0)) / (kept.std(axis=0) if keep else 1.0)
    return z, [names[i] for i in keep]


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Project centred rows onto their first two principal axes -> ([row, 2], explained ratios).

    Signs are fixed (largest loading positive) so the map does not flip between builds.
    """
    n = z.shape[0]
    coords = np.zeros((n, 2))
    if n < 2 or z.shape[1] == 0:
        return coords, [0.0, 0.0]
    centred = z - z.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, len(s))
    for j in range(k):
        sign = np.sign(vt[j, np.argmax(np.abs(vt[j]))]) or 1.0
        coords[:, j] = u[:, j] * s[j] * sign
    total = float(np.sum(s**2))
    explained = [float(s[j] ** 2 / total) if total > 0 and j < k else 0.0 for j in range(2)]
    return coords, explained


def cluster_heads(z: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> tuple[np.ndarray, float]:
    """Ward agglomerative clusters of standardised heads, k chosen by silhouette.

    Returns ([head] labels numbered in order of first appearance, silhouette or NaN).
    Deterministic: Ward linkage has no random state.
    """
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = z.shape[0]
    distinct = len(np.unique(np.round(z, 9), axis=0)) if z.size else 1
    if n < 3 or z.shape[1] == 0 or distinct < 3:
        return np.zeros(n, dtype=int), float("nan")
    best, best_score = None, -np.inf
    for k in range(2, min(max_clusters, distinct - 1) + 1):
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z)
        score = float(silhouette_score(z, labels))
        if score > best_score + 1e-12:
            best, best_score = labels, score
    order = {label: i for i, label in enumerate(dict.fromkeys(best.tolist()))}
    return np.array([order[label] for label in best]), best_score


def cluster_profiles(z: np.ndarray, labels: np.ndarray, names: list[str]) -> list[dict]:
    """Describe each cluster by the metrics whose mean z-score is furthest from 0."""
    profiles = []
    for cluster in sorted(set(labels.tolist())):
        members = labels == cluster
        centre = z[members].mean(axis=0) if z.shape[1] else np.zeros(0)
        top = np.argsort(-np.abs(centre))[:3]
        words = [
            f"{'high' if centre[i] > 0 else 'low'} {DEFINITIONS.get(names[i], (names[i],))[0]}"
            for i in top
            if abs(centre[i]) >= 0.5
        ]
        profiles.append(
            {
                "cluster": int(cluster),
                "heads": int(members.sum()),
                "summary": ", ".join(words) if words else "close to the average head",
            }
        )
    return profiles


def head_tables(per_text: np.ndarray, metrics: list[str]) -> dict:
    """Turn [text, layer, head, metric] per-text metrics into the tables listed above."""
    values = aggregate_texts(per_text, metrics)
    layers, heads, _ = values.shape
    z, used = standardise(values.reshape(layers * heads, -1), metrics)
    coords, explained = pca_2d(z)
    labels, silhouette = cluster_heads(z)
    clusters = [
        {
            "layer": i // heads,
            "head": i % heads,
            "x": _clean(coords[i, 0]),
            "y": _clean(coords[i, 1]),
            "cluster": int(labels[i]),
        }
        for i in range(layers * heads)
    ]
    return {
        "head_metrics": head_rows(values, metrics),
        "head_layer_summary": layer_summary(values, metrics),
        "head_clusters": clusters,
        "head_cluster_info": {
            "metrics": used,
            "explained": [_clean(e) for e in explained],
            "clusters": int(labels.max()) + 1 if labels.size else 0,
            "silhouette": _clean(silhouette),
            "profiles": cluster_profiles(z, labels, used),
        },
    }


def heads_analysis(artifacts: Artifacts) -> dict:
    """Analysis entry point: head tables when the artifacts hold corpus/head_metrics."""
    info = artifacts.manifest.get("attention") or {}
    metrics = info.get("head_metrics") or []
    if not metrics or not artifacts.has("corpus/head_metrics"):
        return {}
    tables = head_tables(np.asarray(artifacts.array("corpus/head_metrics")), list(metrics))
    for kind in SEQ2SEQ_KINDS:
        name = f"showcase/{kind}_head_metrics"
        if artifacts.has(name):
            values = aggregate_texts(np.asarray(artifacts.array(name)), list(metrics))
            tables[f"head_metrics_{kind}"] = head_rows(values, list(metrics))
    return tables
