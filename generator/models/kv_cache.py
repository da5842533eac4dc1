"""Key-value cache of one decoder stack, for greedy decoding one token per row at a time.

Axes: batch, layer, kv_head (key/value heads: fewer than the query heads with grouped-query
attention), slot (= token position: slot p holds the keys and values of the token at position
p), d_head, new (the tokens one step feeds per row: the whole prompt to fill the cache, then 1).

Rows of right-padded prompts of different lengths each write their token at their own position,
so a row's generated tokens overwrite its padding slots; a query at position p sees slots 0..p
(and only the last `window` of them under a sliding window), which is exactly its prefix.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from generator.models.layers import MASKED, run_blocks, stack_probes

# One (keys, values) pair per layer, each [batch, kv_head, slot, d_head].
Cache = tuple[tuple[jax.Array, jax.Array], ...]


def empty_cache(
    batch: int, *, n_layers: int, n_kv_heads: int, n_slots: int, d_head: int, dtype
) -> Cache:
    """Return an all-zero cache of `n_layers` (keys, values) pairs [batch, kv_head, slot, d_head]."""
    shape = (batch, n_kv_heads, n_slots, d_head)
    return tuple((jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)) for _ in range(n_layers))


def cache_bias(positions: jax.Array, n_slots: int, window: int | None = None) -> jax.Array:
    """Return the additive bias [batch, 1, new, slot] of queries at `positions` [batch, new].

    A query at position p sees slots 0..p (with a sliding `window`: p - window < slot <= p);
    0 where visible, float32 min elsewhere.
    """
    slot = jnp.arange(n_slots)[None, None, :]
    position = jnp.asarray(positions)[:, :, None]
    visible = slot <= position
    if window is not None:
        visible = visible & (slot > position - window)
    return jnp.where(visible, 0.0, MASKED).astype(jnp.float32)[:, None]


def write_cache(cache: jax.Array, new: jax.Array, positions: jax.Array) -> jax.Array:
    """Write `new` [batch, head, new, d_head] into `cache` [batch, head, slot, d_head] at the
    slots `positions` [batch, new] of each row."""
    rows = jnp.arange(cache.shape[0])[:, None]
    return cache.at[rows, :, positions].set(new.transpose(0, 2, 1, 3).astype(cache.dtype))


def attend_cached(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    cache: tuple[jax.Array, jax.Array],
    positions: jax.Array,
    attend_kv: Callable[[jax.Array, jax.Array, jax.Array], dict[str, jax.Array]],
) -> dict[str, jax.Array]:
    """Store the step's keys and values in the layer's cache, then attend over every slot.

    Args:
        q: [batch, head, new, d_head] queries of the new tokens.
        k, v: [batch, kv_head, new, d_head] their keys and values.
        cache: the layer's (keys, values) [batch, kv_head, slot, d_head].
        positions: [batch, new] the new tokens' positions (= their slots).
        attend_kv: the family's attention of (q, keys, values) -> probes.

    Returns:
        The probes of `attend_kv` (attentions over slots) plus `cache`, the updated pair.
    """
    cache = (write_cache(cache[0], k, positions), write_cache(cache[1], v, positions))
    probes = attend_kv(q, *cache)
    probes["cache"] = cache
    return probes


def run_cached(x: jax.Array, blocks: list[Callable]) -> tuple:
    """Apply cached blocks in order.

    Returns:
        (last output, hidden [batch, layer(L+1), new, d_model] (the input first), probes
        {name: [batch, layer, ...]}, updated cache).
    """
    x, hidden, probes = run_blocks(x, blocks)
    cache = tuple(p.pop("cache") for p in probes)
    return x, jnp.stack(hidden, axis=1), stack_probes(probes), cache
