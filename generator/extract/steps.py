"""Jitted extraction steps over one padded batch.

Axis names: batch, layer (L+1 with the embedding output first), token, d_model, head, query, key.
The model returns every probe point; each step keeps only what it needs, and XLA drops the rest.
Encoder-decoder models run their encoder here (`model.encode`); their showcase step lives in
extract/seq2seq.py. With a mesh, parameters are split over its `model` axis, inputs come in
split over `data` (sharding.place_batch) and outputs leave replicated (see extract/sharding.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from generator.extract import sharding
from generator.extract.head_metrics import is_causal, key_visibility, layer_windows
from generator.extract.neurons import showcase_top
from generator.extract.reducers import Reducer
from generator.models.layers import unrolled_layers

SHOWCASE_CAPTURES = ("hidden_states", "attentions", "queries", "keys", "values")
# Scores before the softmax: float32 whatever store_dtype (they can be large, and the softmax of
# rounded scores would no longer give the stored weights). Only the showcase step returns them.
SHOWCASE_FLOAT32 = ("attention_scores",)
VOCAB_HEADS = (
    "masked-lm",
    "causal-lm",
    "permutation-lm",
)  # logits over the vocabulary: only the top ones are kept
TOP_K = 16


def head_outputs(out: dict, head: str | None) -> dict:
    """Return the stored head outputs: top-k logits and token ids of a vocabulary head, else logits.

    Vocabulary logits are [batch, token, vocab] (tens of thousands of columns); the showcase keeps
    the `TOP_K` largest per token, computed on the device, in float32.
    """
    if "logits" not in out or head is None:
        return {}
    logits = out["logits"].astype(jnp.float32)
    if head in VOCAB_HEADS:
        values, ids = jax.lax.top_k(logits, min(TOP_K, logits.shape[-1]))
        return {"top_logits": values, "top_token_ids": ids.astype(jnp.int32)}
    return {"logits": logits}


def make_steps(model: nnx.Module, reducers: list[Reducer], store_dtype: jnp.dtype, mesh=None):
    """Return (corpus_step, showcase_step, params): pure jitted functions and the weights they take.

    Weights travel as an argument, not as constants, so compiled programs are small and the
    persistent compilation cache can reuse them across checkpoints of one architecture.
    With a `mesh`, `params` come back sharded over its `model` axis and every output is
    replicated, so each process can read the results.
    """
    graphdef, params = nnx.split(model)
    jit = jax.jit
    if mesh is not None:
        params = sharding.shard_params(params, mesh, model.config.family)
        jit = functools.partial(jax.jit, out_shardings=sharding.replicated(mesh))

    def forward(params, input_ids, attention_mask):
        module = nnx.merge(graphdef, params)
        run = module.encode if module.config.seq2seq else module
        return run(input_ids, attention_mask)

    causal = is_causal(model.config)
    windows = layer_windows(model.config)

    @jit
    def corpus_step(params, input_ids, attention_mask, special_mask):
        # Unrolled layers: the reducers read each layer's maps where the model makes them.
        with unrolled_layers():
            out = dict(forward(params, input_ids, attention_mask))
        # Batch inputs reducers may use next to the probes (all [batch, ...]):
        out["input_ids"] = input_ids
        out["special_mask"] = special_mask  # [batch, token] special tokens (not padding)
        # One [batch, query, key] mask per layer: padding, causal mask, sliding window (if any).
        masks = {w: key_visibility(attention_mask, causal=causal, window=w) for w in set(windows)}
        out["key_visible"] = tuple(masks[w] for w in windows)
        results = {}
        for reducer in reducers:
            value = reducer.fn(out, attention_mask)
            if reducer.stored:
                value = value.astype(store_dtype if reducer.in_store_dtype else jnp.float32)
            results[reducer.name] = value
        return results

    head = getattr(getattr(model, "config", None), "primary_head", None)

    @jit
    def showcase_step(params, input_ids, attention_mask, neuron_ids=None):
        out = forward(params, input_ids, attention_mask)
        captured = {
            name: out[name].astype(store_dtype) for name in SHOWCASE_CAPTURES if name in out
        }
        captured |= {n: out[n].astype(jnp.float32) for n in SHOWCASE_FLOAT32 if n in out}
        if neuron_ids is not None and "mlp_activations" in out:  # [layer, neuron] ids
            top = showcase_top(out["mlp_activations"], neuron_ids)
            captured["mlp_top"] = top.astype(store_dtype)  # [batch, layer, token, neuron]
        return {**captured, **head_outputs(out, head)}

    return corpus_step, showcase_step, params
