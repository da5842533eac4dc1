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


def encoder_decoder_rollout(
    encoder_attentions: np.ndarray,
    cross_attentions: np.ndarray,
    visible: np.ndarray,
    target_visible: np.ndarray,
    residual: float = 0.5,
) -> np.ndarray:
    """Relevance of each visible input token for an encoder-decoder's output.

    The encoder's rollout (how input tokens mix into each encoder position) read through the
    cross-attention averaged over decoder layers, heads and visible target positions (which
    encoder positions the decoder reads). Like `attention_rollout` it ignores values and MLPs,
    and it ignores the decoder's self-attention.

    Args:
        encoder_attentions: [layer, head, query, key] of one example.
        cross_attentions: [decoder layer, head, target, key] of the same example.
        visible: [token] booleans, the non-padding encoder positions.
        target_visible: [target] booleans, the non-padding decoder positions.

    Returns:
        [visible token] scores summing to 1.
    """
    rollout = attention_rollout(encoder_attentions, visible, residual)
    keep, targets = np.flatnonzero(visible), np.flatnonzero(target_visible)
    cross = np.asarray(cross_attentions, dtype=np.float64)[:, :, targets][..., keep]
    reading = cross.mean(axis=(0, 1))  # [target, token]
    reading /= reading.sum(axis=-1, keepdims=True)
    return (reading @ rollout).mean(axis=0)
