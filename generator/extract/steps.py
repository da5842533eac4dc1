"""Jitted extraction steps over one padded batch.

Axis names: batch, layer (L+1 with the embedding output first), token, d_model, head, query, key.
The model returns every probe point; each step keeps only what it needs, and XLA drops the rest.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from generator.extract.head_metrics import is_causal, key_visibility
from generator.extract.reducers import Reducer

SHOWCASE_CAPTURES = ("hidden_states", "attentions", "queries", "keys", "values")


def make_steps(model: nnx.Module, reducers: list[Reducer], store_dtype: jnp.dtype):
    """Return (corpus_step, showcase_step, params): pure jitted functions and the weights they take.

    Weights travel as an argument, not as constants, so compiled programs are small and the
    persistent compilation cache can reuse them across checkpoints of one architecture.
    """
    graphdef, params = nnx.split(model)

    def forward(params, input_ids, attention_mask):
        return nnx.merge(graphdef, params)(input_ids, attention_mask)

    causal = is_causal(model.config)

    @jax.jit
    def corpus_step(params, input_ids, attention_mask, special_mask):
        out = dict(forward(params, input_ids, attention_mask))
        # Batch inputs reducers may use next to the probes (all [batch, ...]):
        out["input_ids"] = input_ids
        out["special_mask"] = special_mask  # [batch, token] special tokens (not padding)
        out["key_visible"] = key_visibility(attention_mask, causal=causal)  # [batch, query, key]
        results = {}
        for reducer in reducers:
            value = reducer.fn(out, attention_mask)
            if reducer.stored:
                value = value.astype(store_dtype if reducer.in_store_dtype else jnp.float32)
            results[reducer.name] = value
        return results

    @jax.jit
    def showcase_step(params, input_ids, attention_mask):
        out = forward(params, input_ids, attention_mask)
        return {name: out[name].astype(store_dtype) for name in SHOWCASE_CAPTURES if name in out}

    return corpus_step, showcase_step, params
