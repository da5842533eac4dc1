"""Attention rollout (Abnar & Zuidema 2020) from stored post-softmax attentions (numpy)."""

from __future__ import annotations

import numpy as np


def attention_rollout(
    attentions: np.ndarray, visible: np.ndarray, residual: float = 0.5
) -> np.ndarray:
    """Propagate attention through the layers, accounting for the residual stream.

    Args:
        attentions: [layer, head, query, key] of one example.
        visible: [token] booleans, the non-padding positions.
        residual: weight of the identity (skip connection) in each layer's mixing matrix.

    Returns:
        [query, key] rollout over the visible tokens: row i says how much each input token
        contributes to position i after the last layer. Rows sum to 1.
    """
    keep = np.flatnonzero(visible)
    att = np.asarray(attentions, dtype=np.float64)[:, :, keep][:, :, :, keep]
    n = len(keep)
    rollout = np.eye(n)
    for layer in att:
        mixing = residual * np.eye(n) + (1.0 - residual) * layer.mean(axis=0)
        mixing /= mixing.sum(axis=-1, keepdims=True)
        rollout = mixing @ rollout
    return rollout
