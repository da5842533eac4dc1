"""A plain-numpy, loop-per-query re-implementation of the head metrics, for tests only.

Written independently of generator/extract/head_metrics.py (no shared code): one query at a
time, over the list of keys it can see.
"""

from __future__ import annotations

import math

import numpy as np

NAMES = (
    "entropy",
    "normalized_entropy",
    "kl_uniform",
    "sparsity",
    "nonzero_mean",
    "nonzero_max",
    "distance",
    "first_token",
    "special",
    "previous",
    "next",
    "self",
    "max_weight",
)


def query_metrics(row: np.ndarray, q: int, keys: list[int], special: np.ndarray, threshold: float):
    """Return {metric: value or None} for one query's weights `row` over its visible `keys`."""
    p = np.array([float(row[k]) for k in keys])
    n = len(keys)
    entropy = -sum(x * math.log(x) for x in p if x > 0)
    kept = int(sum(1 for x in p if x >= threshold))
    weight = dict(zip(keys, p, strict=True))
    return {
        "entropy": entropy,
        "normalized_entropy": entropy / math.log(n) if n > 1 else None,
        "kl_uniform": sum(x * math.log(x * n) for x in p if x > 0),
        "sparsity": (n - kept) / n,
        "nonzero_mean": kept,
        "nonzero_max": kept,
        "distance": sum(x * abs(q - k) for k, x in weight.items()),
        "first_token": weight.get(0),
        "special": sum(x for k, x in weight.items() if special[k]),
        "previous": weight.get(q - 1),
        "next": weight.get(q + 1),
        "self": weight.get(q),
        "max_weight": float(p.max()),
    }


def reference_metrics(
    attentions: np.ndarray,
    query_mask: np.ndarray,
    key_mask: np.ndarray,
    special: np.ndarray,
    causal: bool,
    threshold: float = 0.01,
    windows: tuple[int | None, ...] | None = None,
) -> np.ndarray:
    """Return [batch, layer, head, metric] like head_metrics, from [batch, layer, head, q, k].

    `windows`: per layer, a sliding window (query q sees keys q - window < k) or None.
    """
    batch, layers, heads, n_query, n_key = attentions.shape
    out = np.full((batch, layers, heads, len(NAMES)), np.nan)
    for b in range(batch):
        for layer in range(layers):
            for h in range(heads):
                values = {name: [] for name in NAMES}
                for q in range(n_query):
                    if not query_mask[b, q]:
                        continue
                    window = windows[layer] if windows else None
                    keys = [
                        k
                        for k in range(n_key)
                        if key_mask[b, k]
                        and (not causal or k <= q)
                        and (window is None or k > q - window)
                    ]
                    if not keys:
                        continue
                    row = attentions[b, layer, h, q]
                    for name, value in query_metrics(row, q, keys, special[b], threshold).items():
                        if value is not None:
                            values[name].append(value)
                for i, name in enumerate(NAMES):
                    if values[name]:
                        pick = max if name == "nonzero_max" else np.mean
                        out[b, layer, h, i] = pick(values[name])
    return out
