"""Activation tables: corpus-wide value distributions, residual norms and outlier dimensions.

Inputs are the per-text reducers of `generator.extract.activation_stats` (histograms over
fixed bin edges `corpus/act_edges`, norm sums, per-dimension extremes with their positions).
Histograms are summed over texts, so every count is exact; quantiles are read from the summed
histogram by linear interpolation inside the bin where the cumulative count crosses q·N.

Outlier ("massive") dimensions: for layer l and dimension d, A[l, d] = max over the corpus of
|h[l, token, d]|. A dimension is flagged when A[l, d] ≥ OUTLIER_RATIO × median_d A[l, d], i.e.
when its extreme is several times that of a typical dimension of the same layer (a comparison
that does not drift with corpus size, as a max-versus-median-value rule would). The TOP_DIMS
largest dimensions of each layer are listed whether flagged or not. Dead dimensions are the
opposite: A[l, d] < DEAD_RATIO × median_d A[l, d] (e.g. a LayerNorm gain of ~0).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

QUANTILE_LEVELS = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
OUTLIER_RATIO = 3.0
DEAD_RATIO = 1e-3  # a dimension whose largest |value| is below this × the typical one is dead
TOP_DIMS = 5
MAX_FLAGGED = 16  # flagged dimensions listed per layer
QUANTITIES = (
    ("hidden", "hidden states (residual stream)", "act_hist_hidden"),
    ("queries", "queries", "act_hist_queries"),
    ("keys", "keys", "act_hist_keys"),
    ("values", "values", "act_hist_values"),
    ("mlp", "MLP activations (after the non-linearity)", "act_hist_mlp"),
)


def level_name(q: float) -> str:
    """Return the column name of a quantile level: 0.05 -> 'p5', 0.001 -> 'p0_1'."""
    return f"p{q * 100:g}".replace(".", "_")


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, levels) -> np.ndarray:
    """Return the quantiles at `levels` of values summarised by a histogram.

    Args:
        counts: [bin] counts; edges: [bin + 1] increasing bin edges.
        levels: quantile levels in [0, 1].

    Returns:
        [level] values, linearly interpolated inside the bin where the cumulative count
        reaches level × total (NaN for an empty histogram).
    """
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return np.full(len(levels), np.nan)
    cumulative = np.cumsum(counts)
    out = []
    for q in levels:
        target = q * total
        i = int(np.searchsorted(cumulative, target, side="left"))
        i = min(i, len(counts) - 1)
        while counts[i] == 0 and i < len(counts) - 1:  # land on a bin that holds values
            i += 1
        below = cumulative[i] - counts[i]
        fraction = (target - below) / counts[i] if counts[i] else 0.0
        out.append(edges[i] + np.clip(fraction, 0.0, 1.0) * (edges[i + 1] - edges[i]))
    return np.array(out)


def layer_labels(n: int, with_embeddings: bool) -> list[str]:
    """Return labels of the layer axis: 'embeddings', '1'.. for hidden states, '0'.. for blocks."""
    if with_embeddings:
        return ["embeddings", *(f"after {i}" for i in range(n - 1))]
    return [str(i) for i in range(n)]


def quantile_table(summed: dict[str, np.ndarray], edges: np.ndarray) -> list[dict]:
    """Return per quantity and layer: tokens counted and the value quantiles.

    Args:
        summed: quantity -> [layer, bin] counts summed over the corpus.
        edges: the fixed bin edges.
    """
    rows = []
    for quantity, label, _ in QUANTITIES:
        if quantity not in summed:
            continue
        counts = summed[quantity]
        labels = layer_labels(len(counts), quantity == "hidden")
        for layer, layer_counts in enumerate(counts):
            values = histogram_quantiles(layer_counts, edges, QUANTILE_LEVELS)
            rows.append(
                {
                    "quantity": quantity,
                    "quantity_label": label,
                    "layer": layer,
                    "layer_label": labels[layer],
                    "values_counted": int(layer_counts.sum()),
                    "median_abs": float(median_abs(layer_counts, edges)),
                    **{
                        level_name(q): float(v)
                        for q, v in zip(QUANTILE_LEVELS, values, strict=True)
                    },
                }
            )
    return rows


def median_abs(counts: np.ndarray, edges: np.ndarray) -> float:
    """Return the median |value| of a symmetric-edge histogram (folded at zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    half = len(counts) // 2  # the central bin straddles zero
    folded = counts[half:].copy()
    folded[1:] += counts[:half][::-1]
    folded_edges = np.concatenate([[0.0], edges[half + 1 :]])
    return float(histogram_quantiles(folded, folded_edges, (0.5,))[0])


def histogram_rows(summed: dict[str, np.ndarray], edges: np.ndarray) -> dict[str, list[dict]]:
    """Return per quantity the non-empty bins of every layer: {layer, start, end, fraction}."""
    out = {}
    for quantity, _, _ in QUANTITIES:
        if quantity not in summed:
            continue
        rows = []
        counts = summed[quantity]
        labels = layer_labels(len(counts), quantity == "hidden")
        for layer, layer_counts in enumerate(counts):
            total = max(float(layer_counts.sum()), 1.0)
            for b in np.flatnonzero(layer_counts):
                rows.append(
                    {
                        "layer": layer,
                        "layer_label": labels[layer],
                        "start": float(edges[b]),
                        "end": float(edges[b + 1]),
                        "fraction": float(layer_counts[b] / total),
                    }
                )
        out[quantity] = rows
    return out


def score_histogram_rows(counts: np.ndarray, edges: np.ndarray) -> list[dict]:
    """Return the non-empty bins of every layer and head: {layer, head, start, end, fraction}.

    `counts` is corpus/score_hist [layer, head, bin] (already summed over the corpus).
    """
    rows = []
    for (layer, head), head_counts in np.ndenumerate(counts.sum(axis=-1)):
        bins = counts[layer, head]
        total = max(float(head_counts), 1.0)
        rows.extend(
            {
                "layer": int(layer),
                "head": int(head),
                "start": float(edges[b]),
                "end": float(edges[b + 1]),
                "fraction": float(bins[b] / total),
            }
            for b in np.flatnonzero(bins)
        )
    return rows


def residual_norm_table(
    norm_counts: np.ndarray, norm_sums: np.ndarray, tokens: int, edges: np.ndarray
) -> list[dict]:
    """Return per layer the mean (exact) and quantiles (from the histogram) of token norms.

    Args:
        norm_counts: [layer, bin] summed histogram of per-token L2 norms.
        norm_sums: [layer] summed norms; tokens: non-padding tokens in the corpus.
        edges: the fixed bin edges.
    """
    labels = layer_labels(len(norm_counts), True)
    rows = []
    for layer, counts in enumerate(norm_counts):
        values = histogram_quantiles(counts, edges, QUANTILE_LEVELS)
        rows.append(
            {
                "layer": layer,
                "layer_label": labels[layer],
                "mean": float(norm_sums[layer] / max(tokens, 1)),
                **{level_name(q): float(v) for q, v in zip(QUANTILE_LEVELS, values, strict=True)},
            }
        )
    return rows


def token_lookup(vocab_ids: np.ndarray, vocab_tokens: np.ndarray):
    """Return a function id -> token string over the corpus vocabulary."""
    table = {int(i): str(t) for i, t in zip(vocab_ids, vocab_tokens, strict=True)}
    return lambda token_id: table.get(int(token_id), f"[{int(token_id)}]")


def outlier_dimensions(
    extremes: np.ndarray,
    positions: np.ndarray,
    input_ids: np.ndarray,
    token_of,
    texts: np.ndarray,
    *,
    median_abs_by_layer: list[float],
) -> tuple[list[dict], list[dict]]:
    """Find the outlier dimensions of the residual stream and where they fire.

    Args:
        extremes: [text, layer, dim] signed value of largest |value| per text.
        positions: [text, layer, dim] its token position.
        input_ids: [text, token] corpus ids (-1 past the end).
        token_of: id -> token string.
        texts: [text] corpus texts.
        median_abs_by_layer: [layer] median |hidden value| over the corpus.

    Returns:
        (profile rows {layer, dim, max_abs, ratio, flagged} for every dimension,
         detail rows for flagged and top dimensions with the tokens where they peak).
    """
    magnitude = np.abs(np.asarray(extremes, dtype=np.float64))
    peak = magnitude.max(axis=0)  # [layer, dim]
    where = magnitude.argmax(axis=0)  # [layer, dim] text of the corpus-wide peak
    typical = np.median(peak, axis=1)  # [layer]
    labels = layer_labels(peak.shape[0], True)
    profile, details = [], []
    for layer in range(peak.shape[0]):
        ratio = peak[layer] / max(float(typical[layer]), 1e-30)
        for dim in range(peak.shape[1]):
            profile.append(
                {
                    "layer": layer,
                    "layer_label": labels[layer],
                    "dim": dim,
                    "max_abs": float(peak[layer, dim]),
                    "ratio": float(ratio[dim]),
                    "flagged": bool(ratio[dim] >= OUTLIER_RATIO),
                }
            )
        ranked = np.argsort(-peak[layer], kind="stable")
        flagged = [d for d in ranked if ratio[d] >= OUTLIER_RATIO][:MAX_FLAGGED]
        chosen = list(dict.fromkeys([*flagged, *ranked[:TOP_DIMS]]))
        for dim in chosen:
            text = int(where[layer, dim])
            position = int(positions[text, layer, dim])
            spots = np.asarray(positions[:, layer, dim]).astype(np.int64)
            at = [token_of(i) for i in input_ids[np.arange(len(input_ids)), spots]]
            common, hits = Counter(at).most_common(1)[0]
            details.append(
                {
                    "layer": layer,
                    "layer_label": labels[layer],
                    "dim": int(dim),
                    "value": float(extremes[text, layer, dim]),
                    "max_abs": float(peak[layer, dim]),
                    "ratio": float(ratio[dim]),
                    "ratio_to_median": float(
                        peak[layer, dim] / max(median_abs_by_layer[layer], 1e-30)
                    ),
                    "flagged": bool(ratio[dim] >= OUTLIER_RATIO),
                    "text": text,
                    "position": position,
                    "token": token_of(input_ids[text, position]),
                    "snippet": str(texts[text])[:120],
                    "usual_token": common,
                    "usual_share": hits / len(at),
                }
            )
    return profile, details


def dead_dimensions(profile: list[dict]) -> list[dict]:
    """Return {layer, layer_label, dim, max_abs} of dimensions that stay ~0 over the corpus."""
    return [
        {k: row[k] for k in ("layer", "layer_label", "dim", "max_abs")}
        for row in profile
        if row["ratio"] < DEAD_RATIO
    ]


def activations_analysis(artifacts) -> dict:
    """Compute every activation table of an artifact folder ({} without a corpus)."""
    corpus = artifacts.manifest.get("corpus")
    if not corpus or not artifacts.has("corpus/act_hist_hidden"):
        return {}
    edges = np.asarray(artifacts.array("corpus/act_edges"), dtype=np.float64)
    summed = {
        quantity: np.asarray(artifacts.array(f"corpus/{name}"), dtype=np.float64).sum(axis=0)
        for quantity, _, name in QUANTITIES
        if artifacts.has(f"corpus/{name}")
    }
    quantiles = quantile_table(summed, edges)
    tokens = int(np.sum(artifacts.array("corpus/token_lengths")))
    medians = [row["median_abs"] for row in quantiles if row["quantity"] == "hidden"]
    profile, outliers = outlier_dimensions(
        artifacts.array("corpus/act_extreme"),
        artifacts.array("corpus/act_extreme_pos"),
        np.asarray(artifacts.array("corpus/input_ids")),
        token_lookup(artifacts.array("corpus/vocab_ids"), artifacts.array("corpus/vocab_tokens")),
        artifacts.array("corpus/texts"),
        median_abs_by_layer=medians,
    )
    norms = np.asarray(artifacts.array("corpus/residual_norm_hist"), dtype=np.float64).sum(0)
    sums = np.asarray(artifacts.array("corpus/residual_norm_sum"), dtype=np.float64).sum(0)
    norm_edges = np.asarray(artifacts.array("corpus/norm_edges"), dtype=np.float64)
    scores = {}
    if artifacts.has("corpus/score_hist"):
        counts = np.asarray(artifacts.array("corpus/score_hist"), dtype=np.float64)
        scores = {"activation_score_histograms": score_histogram_rows(counts, edges)}
    return {
        **scores,
        "activation_quantiles": quantiles,
        "activation_histograms": histogram_rows(summed, edges),
        "activation_residual_norms": residual_norm_table(norms, sums, tokens, norm_edges),
        "activation_outlier_profile": profile,
        "activation_outliers": outliers,
        "activation_dead_dimensions": dead_dimensions(profile),
        "activation_facts": {
            "texts": int(corpus["n_texts"]),
            "tokens": tokens,
            "outlier_ratio": OUTLIER_RATIO,
            "dead_ratio": DEAD_RATIO,
            "top_dims": TOP_DIMS,
            "bins": int(len(edges) - 1),
            "edge_low": float(edges[len(edges) // 2]),
            "edge_high": float(edges[-1]),
        },
    }
