"""Corpus reducers: per-text summaries computed inside the jitted corpus step.

Each reducer maps the model's outputs for one padded batch to an array with a leading `text`
(batch) axis; the extract stage streams it into `corpus/NAME.npy`. Nothing per-token leaves
the device for the whole corpus: only showcase examples keep full captures.

To add a reducer: write a function `(outputs, attention_mask) -> [batch, ...]`, describe it
with `Reducer` (naming the analysis it feeds: a card whose `analyses` leaves that analysis out
does not compute it), and append it to `REDUCERS` (or register it from its own module). Besides the
model's probes, `outputs` holds the batch inputs `input_ids` and `special_mask` [batch, token]
and `key_visible`, one [batch, query, key] mask per layer (padding and, for causal models, the
causal mask and any sliding window). A `summed` reducer is added up over the texts on the host
and stored once, without the `text` axis (corpus-wide histograms too large to keep per text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from generator.extract import activation_stats, head_metrics
from generator.models.config import ModelConfig
from generator.models.layers import last_token

Outputs = dict[str, jax.Array]


@dataclass(frozen=True)
class Reducer:
    """A per-text summary: name, named axes after `text`, shape rule, and the function."""

    name: str
    axes: tuple[str, ...]
    shape: Callable[[ModelConfig], tuple[int, ...]]
    fn: Callable[[Outputs, jax.Array], jax.Array]
    applies: Callable[[ModelConfig], bool] = field(default=lambda config: True)
    stored: bool = True  # False: checked on the host, not written (e.g. finiteness)
    in_store_dtype: bool = True  # stored in the card's store_dtype; False keeps float32 (metrics)
    analysis: str | None = None  # the analysis (analysis_names.py) it feeds; None: always run
    summed: bool = False  # True: stored as the sum over texts (float64), no `text` axis


def mean_pool(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Average [batch, layer, token, d_model] over non-padding tokens -> [batch, layer, d_model]."""
    mask = attention_mask.astype(hidden_states.dtype)[:, None, :, None]
    total = jnp.sum(hidden_states * mask, axis=2)
    count = jnp.maximum(jnp.sum(mask, axis=2), 1.0)
    return total / count


def first_token_pool(hidden_states: jax.Array) -> jax.Array:
    """Take the first ([CLS]) token of every layer -> [batch, layer, d_model]."""
    return hidden_states[:, :, 0, :]


def last_token_pool(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Take the last non-padding token of every layer -> [batch, layer, d_model]."""
    return last_token(hidden_states, attention_mask, axis=2)


def unit_token_sum(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Sum each text's unit-length token vectors per layer -> [batch, layer, d_model].

    From these sums and the token counts the analyze stage gets the exact mean cosine
    similarity over all token pairs, within and between texts (anisotropy), with no sampling.
    """
    norms = jnp.linalg.norm(hidden_states, axis=-1, keepdims=True)
    units = hidden_states / jnp.maximum(norms, 1e-12)
    mask = attention_mask.astype(units.dtype)[:, None, :, None]
    return jnp.sum(units * mask, axis=2)


def finite_layers(hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Return [batch, layer] booleans: every non-padding activation of that layer is finite."""
    visible = attention_mask.astype(bool)[:, None, :, None]
    return jnp.all(jnp.isfinite(hidden_states) | ~visible, axis=(2, 3))


def _hidden(outputs: Outputs) -> jax.Array:
    return outputs["hidden_states"].astype(jnp.float32)


def _layers_by_width(config: ModelConfig) -> tuple[int, ...]:
    return (config.n_layers + 1, config.d_model)


REDUCERS: list[Reducer] = [
    Reducer(
        "finite",
        ("layer",),
        lambda c: (c.n_layers + 1,),
        lambda out, mask: finite_layers(_hidden(out), mask),
        stored=False,
    ),
    Reducer(
        "pooled_mean",
        ("layer", "d_model"),
        _layers_by_width,
        lambda out, mask: mean_pool(_hidden(out), mask),
        analysis="representations",
    ),
    Reducer(
        "pooled_cls",
        ("layer", "d_model"),
        _layers_by_width,
        lambda out, mask: first_token_pool(_hidden(out)),
        # a decoder's first token sees only itself
        applies=lambda config: not config.causal and not config.cls_last,
        analysis="representations",
    ),
    Reducer(  # XLNet: `text <sep> <cls>`, the classification token is the last real one
        "pooled_cls",
        ("layer", "d_model"),
        _layers_by_width,
        lambda out, mask: last_token_pool(_hidden(out), mask),
        applies=lambda config: not config.causal and config.cls_last,
        analysis="representations",
    ),
    Reducer(
        "pooled_last",
        ("layer", "d_model"),
        _layers_by_width,
        lambda out, mask: last_token_pool(_hidden(out), mask),
        applies=lambda config: config.causal,  # the last token of a decoder has seen them all
        analysis="representations",
    ),
    *(  # histograms, norms, outliers
        Reducer(**spec, analysis="activations") for spec in activation_stats.REDUCER_SPECS
    ),
    Reducer(  # per layer and head: summed over the corpus (per text it would be L*H*257 counts)
        "score_hist",
        ("layer", "head", "bin"),
        lambda c: (c.n_layers, c.n_heads, activation_stats.VALUES.bins),
        activation_stats.score_histogram,
        in_store_dtype=False,
        analysis="activations",
        summed=True,
    ),
    Reducer(
        "head_metrics",
        ("layer", "head", "metric"),
        head_metrics.head_metrics_shape,
        head_metrics.self_attention_metrics,  # encoder-decoders: the encoder's
        in_store_dtype=False,
        analysis="heads",
    ),
    Reducer(
        "unit_token_sum",
        ("layer", "d_model"),
        _layers_by_width,
        lambda out, mask: unit_token_sum(_hidden(out), mask),
        in_store_dtype=False,
        analysis="representations",
    ),
]


def active_reducers(config: ModelConfig, analyses: tuple[str, ...] | None = None) -> list[Reducer]:
    """Return the reducers that apply to a model and feed one of `analyses` (None: all)."""
    return [
        reducer
        for reducer in REDUCERS
        if reducer.applies(config)
        and (analyses is None or reducer.analysis is None or reducer.analysis in analyses)
    ]


def open_reducer_arrays(
    writer, reducers: list[Reducer], config: ModelConfig, n_texts: int, *, store, prefix: str = ""
) -> dict:
    """Open `PREFIXcorpus/NAME` `[text, *axes]` for each stored reducer; return name -> memmap.

    `store` is the card's store dtype (reducers with `in_store_dtype=False` keep float32).
    """
    return {
        reducer.name: writer.open_array(
            f"{prefix}corpus/{reducer.name}",
            (n_texts, *reducer.shape(config)),
            store if reducer.in_store_dtype else jnp.float32,
            ("text", *reducer.axes),
        )
        for reducer in reducers
        if reducer.stored and not reducer.summed
    }


def open_summed_arrays(writer, reducers: list[Reducer], config: ModelConfig) -> dict:
    """Open `corpus/NAME` `[*axes]` (float64) for each summed reducer; return name -> memmap."""
    return {
        reducer.name: writer.open_array(
            f"corpus/{reducer.name}", reducer.shape(config), jnp.float64, reducer.axes
        )
        for reducer in reducers
        if reducer.summed
    }
