"""Jitted extraction steps over one padded batch.

Axis names: batch, layer (L+1 with the embedding output first), token, d_model, head, query, key.
The model returns every probe point; each step keeps only what it needs, and XLA drops the rest.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx


def mean_pool(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Average [batch, layer, token, d_model] over non-padding tokens -> [batch, layer, d_model]."""
    mask = attention_mask.astype(hidden_states.dtype)[:, None, :, None]
    total = jnp.sum(hidden_states * mask, axis=2)
    count = jnp.maximum(jnp.sum(mask, axis=2), 1.0)
    return total / count


def first_token_pool(hidden_states: jax.Array) -> jax.Array:
    """Take the first ([CLS]) token of every layer -> [batch, layer, d_model]."""
    return hidden_states[:, :, 0, :]


def finite_layers(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Return [batch, layer] booleans: every non-padding activation of that layer is finite."""
    visible = attention_mask.astype(bool)[:, None, :, None]
    return jnp.all(jnp.isfinite(hidden_states) | ~visible, axis=(2, 3))


def make_steps(model: nnx.Module, store_dtype: jnp.dtype):
    """Return (corpus_step, showcase_step, params): pure jitted functions and the weights they take.

    Weights travel as an argument, not as constants, so compiled programs are small and the
    persistent compilation cache can reuse them across checkpoints of one architecture.
    """
    graphdef, params = nnx.split(model)

    def forward(params, input_ids, attention_mask):
        return nnx.merge(graphdef, params)(input_ids, attention_mask)

    @jax.jit
    def corpus_step(params, input_ids, attention_mask):
        out = forward(params, input_ids, attention_mask)
        hidden = out["hidden_states"].astype(jnp.float32)
        return {
            "pooled_mean": mean_pool(hidden, attention_mask).astype(store_dtype),
            "pooled_cls": first_token_pool(hidden).astype(store_dtype),
            "finite": finite_layers(hidden, attention_mask),
        }

    @partial(jax.jit)
    def showcase_step(params, input_ids, attention_mask):
        out = forward(params, input_ids, attention_mask)
        keep = ("hidden_states", "attentions", "queries", "keys", "values")
        return {name: out[name].astype(store_dtype) for name in keep}

    return corpus_step, showcase_step, params
