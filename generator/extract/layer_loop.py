"""Reduce stacked per-layer probes without tracing one copy of the reducer per layer.

`over_layers` loops over the layer axis inside the program (`jax.lax.map`): the reducer is traced
and compiled once whatever the depth, and only one layer's working set is live at a time.
`by_mask_group` does so once per distinct key-visibility mask (layers of one sliding-window
pattern share one mask), so the traced program grows with the number of masks, not with depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def over_layers(reduce, stacked: jax.Array) -> jax.Array:
    """Apply `reduce(one layer [batch, ...])` to each layer of `stacked` [batch, layer, ...].

    Returns the results stacked on a leading layer axis (pytrees stack leaf by leaf).
    """

    def take(layer):
        return reduce(jax.lax.dynamic_index_in_dim(stacked, layer, 1, keepdims=False))

    return jax.lax.map(take, jnp.arange(stacked.shape[1]))


def mask_groups(visible, n_layers: int) -> list[tuple[tuple[int, ...], jax.Array]]:
    """Group the layers that share one key-visibility mask: [(layers, [batch, query, key])].

    `visible` is one mask for every layer or a sequence of them, one per layer, where layers of
    one sliding-window pattern share the same array object. Groups come in first-layer order.
    """
    per_layer = list(visible) if isinstance(visible, (list, tuple)) else [visible] * n_layers
    groups: dict[int, tuple[jax.Array, list[int]]] = {}
    for layer, mask in enumerate(per_layer):
        groups.setdefault(id(mask), (mask, []))[1].append(layer)
    return [(tuple(layers), mask) for mask, layers in groups.values()]


def by_mask_group(reduce, stacked: jax.Array, visible) -> jax.Array:
    """Apply `reduce(one layer [batch, ...], mask)` to every layer; results [batch, layer, ...].

    One in-program loop (`over_layers`) per group of layers sharing a mask.
    """
    groups = mask_groups(visible, stacked.shape[1])
    parts = []
    for layers, mask in groups:
        maps = stacked if len(groups) == 1 else stacked[:, np.asarray(layers)]
        parts.append(jnp.moveaxis(over_layers(lambda one, m=mask: reduce(one, m), maps), 0, 1))
    if len(groups) == 1:
        return parts[0]
    order = np.argsort([layer for layers, _ in groups for layer in layers])
    return jnp.concatenate(parts, axis=1)[:, order]
