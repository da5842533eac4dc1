"""Per-head attention metrics, computed on device inside the jitted corpus step.

`head_metrics` works on any attention tensor [batch, layer, head, query, key] (self-attention of
an encoder or a causal decoder, or cross-attention: `cross_attention_metrics`, whose
position-comparing metrics `CROSS_UNDEFINED` are NaN) given which queries are real and which keys
each query may see; `key_visibility` builds that mask from a padding mask and a causal flag.
Every metric is computed per query over its visible keys, then averaged over the text's eligible
queries (padded queries never count), giving [batch, layer, head, metric] float32. A text with no
eligible query for a metric (e.g. next-token attention under a causal mask) gets NaN there.

Metrics (the order of `METRICS`, also recorded in the manifest):
  entropy             -sum_k p log p, in nats
  normalized_entropy  entropy / log(visible keys); queries that see one key only are skipped
  kl_uniform          KL(p || uniform over the visible keys) = log(visible keys) - entropy
  sparsity            share of visible keys with weight below SPARSITY_THRESHOLD
  nonzero_mean        visible keys with weight >= SPARSITY_THRESHOLD (mean over queries)
  nonzero_max         the same count, maximum over the text's queries
  distance            sum_k p |q - k|: mean attention distance in tokens
  first_token         weight on key 0
  special             weight on special tokens (the special-token mask of the batch)
  previous            weight on key q-1 (queries that have a visible previous token)
  next                weight on key q+1 (queries that have a visible next token)
  self                weight on key q (the diagonal)
  max_weight          the largest weight of the query
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from generator.extract.layer_loop import by_mask_group

SPARSITY_THRESHOLD = 0.01  # a weight below this counts as "zero" (sparsity, nonzero counts)

METRICS = (
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
# How a metric's per-text values combine over the corpus: the mean, except this maximum.
MAX_OVER_TEXTS = ("nonzero_max",)
# Metrics that compare a query's position with a key's: undefined for cross-attention, whose
# queries (decoder tokens) and keys (encoder tokens) are positions of different sequences.
CROSS_UNDEFINED = ("distance", "previous", "next", "self")


def is_causal(config) -> bool:
    """Tell whether a model's self-attention is causal (`ModelConfig.causal`)."""
    return bool(config.causal)


def is_encoder_decoder(config) -> bool:
    """Tell whether a model has separate encoder, decoder and cross attentions."""
    return config.seq2seq


def layer_windows(config) -> tuple[int | None, ...]:
    """Return each layer's sliding attention window (None: no window), as the model applies it."""
    windows = tuple(getattr(config, "sliding_windows", ()) or ())
    return windows or (None,) * config.n_layers


def key_visibility(
    query_mask: jax.Array,
    key_mask: jax.Array | None = None,
    causal: bool = False,
    window: int | None = None,
) -> jax.Array:
    """Return [batch, query, key] booleans: key k is visible to query q.

    Args:
        query_mask: [batch, query] 1 for real tokens, 0 for padding.
        key_mask: [batch, key] padding mask of the keys (cross-attention); default query_mask.
        causal: whether query q sees only keys k <= q.
        window: sliding window: query q sees only keys k > q - window (models/layers.mask_bias).
    """
    key_mask = query_mask if key_mask is None else key_mask
    (batch, n_query), n_key = query_mask.shape, key_mask.shape[1]
    visible = jnp.broadcast_to(jnp.asarray(key_mask)[:, None, :] > 0, (batch, n_query, n_key))
    if causal:
        visible = visible & (jnp.arange(n_key)[None, :] <= jnp.arange(n_query)[:, None])[None]
    if window is not None:
        visible = (
            visible & (jnp.arange(n_key)[None, :] > jnp.arange(n_query)[:, None] - window)[None]
        )
    return visible


def _offset_weight(p: jax.Array, visible: jax.Array, offset: int) -> tuple[jax.Array, jax.Array]:
    """Return (weight on key q+offset [b, l, h, query], eligible queries [b, query]).

    Reads one diagonal of each map (O(query) work) instead of masking the whole map.
    """
    n_query, n_key = visible.shape[1], visible.shape[2]
    query = jnp.arange(n_query)
    key = query + offset
    inside = (key >= 0) & (key < n_key)  # [query]
    safe = jnp.clip(key, 0, n_key - 1)
    picked = jnp.take_along_axis(p, safe.reshape(1, 1, 1, n_query, 1), axis=-1)[..., 0]
    weight = jnp.where(inside, picked, 0.0)
    eligible = inside[None] & jnp.take_along_axis(visible, safe[None, :, None], axis=-1)[..., 0]
    return weight, eligible


def head_metrics(
    attentions: jax.Array,
    query_mask: jax.Array,
    visible: jax.Array,
    special: jax.Array,
    threshold: float = SPARSITY_THRESHOLD,
) -> jax.Array:
    """Compute every metric of `METRICS` per text, layer and head.

    Args:
        attentions: [batch, layer, head, query, key] post-softmax weights.
        query_mask: [batch, query] 1 for real queries; padded queries are left out of averages.
        visible: [batch, query, key] booleans from `key_visibility`, or a sequence of them, one
            per layer (sliding windows); invisible keys count as 0.
        special: [batch, key] booleans marking special tokens (attention sinks).
        threshold: weights below it count as zero for sparsity and the non-zero counts.

    Returns:
        [batch, layer, head, metric] float32 in the order of `METRICS`; NaN where a text has no
        eligible query for that metric.
    """

    # One layer at a time, in an in-program loop (extract/layer_loop.py): traced once whatever
    # the depth, with one layer's [batch, head, query, key] working set live at a time.
    def one_layer(maps, mask):  # [batch, head, query, key] -> [batch, head, metric]
        return _metrics(maps[:, None], query_mask, mask, special, threshold)[:, 0]

    return by_mask_group(one_layer, attentions, visible)


def _key_reductions(p, vis, special_keys, threshold) -> tuple[jax.Array, ...]:
    """Reduce each query's weights over the keys in one pass -> five [b, l, h, q] arrays.

    Σ p log p, visible keys with p >= threshold, Σ p |q − k|, Σ p on special keys, max p, of
    p [b, l, h, q, k] (0 on invisible keys) with vis and special_keys broadcastable to it. One
    variadic reduce reads each map once; on the CPU it also stays out of YNNPACK's reduce
    fusions, which made the five separate sums 4x slower (they allocate their buffers per call).
    """
    n_query, n_key = p.shape[-2:]
    gap = jnp.abs(jnp.arange(n_key)[None, :] - jnp.arange(n_query)[:, None]).astype(jnp.float32)
    operands = (
        xlogy(p, p),
        ((p >= threshold) & vis).astype(jnp.float32),
        p * gap,
        jnp.where(special_keys, p, 0.0),
        p,
    )
    zero = jnp.float32(0.0)
    initial = (zero, zero, zero, zero, jnp.float32(-jnp.inf))

    def combine(a, b):
        return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], jnp.maximum(a[4], b[4]))

    return jax.lax.reduce(operands, initial, combine, (p.ndim - 1,))


def _metrics(attentions, query_mask, visible, special, threshold) -> jax.Array:
    """`head_metrics` of [batch, layer, head, query, key] maps, all layers at once."""
    vis = visible[:, None, None]  # [b, 1, 1, q, k]
    p = jnp.where(vis, attentions.astype(jnp.float32), 0.0)
    n_vis = jnp.sum(visible, axis=-1).astype(jnp.float32)  # [b, q]
    log_n = jnp.log(jnp.maximum(n_vis, 1.0))[:, None, None]
    plogp, nonzero, distance, on_special, max_weight = _key_reductions(
        p, vis, special.astype(bool)[:, None, None, None, :], threshold
    )
    entropy = -plogp  # [b, l, h, q]
    previous, has_previous = _offset_weight(p, visible, -1)
    following, has_next = _offset_weight(p, visible, 1)
    diagonal, has_self = _offset_weight(p, visible, 0)

    real = jnp.asarray(query_mask) > 0  # [b, q]
    seen = real & (n_vis > 0)
    per_query = {  # name -> ([b, l, h, q] values, [b, q] eligible queries)
        "entropy": (entropy, seen),
        "normalized_entropy": (entropy / jnp.where(log_n > 0, log_n, 1.0), real & (n_vis > 1)),
        "kl_uniform": (jnp.maximum(log_n - entropy, 0.0), seen),  # >= 0 up to rounding
        "sparsity": (1.0 - nonzero / jnp.maximum(n_vis, 1.0)[:, None, None], seen),
        "nonzero_mean": (nonzero, seen),
        "distance": (distance, seen),
        "first_token": (p[..., 0], seen & visible[:, :, 0]),
        "special": (on_special, seen),
        "previous": (previous, real & has_previous),
        "next": (following, real & has_next),
        "self": (diagonal, real & has_self),
        "max_weight": (max_weight, seen),
    }
    columns = []
    for name in METRICS:
        if name == "nonzero_max":
            values = jnp.where(seen[:, None, None], nonzero, -jnp.inf).max(axis=-1)
            columns.append(jnp.where(jnp.isfinite(values), values, jnp.nan))
            continue
        values, eligible = per_query[name]
        weight = eligible.astype(jnp.float32)[:, None, None]  # [b, 1, 1, q]
        count = jnp.sum(weight, axis=-1)
        total = jnp.sum(jnp.where(weight > 0, values, 0.0), axis=-1)
        columns.append(jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan))
    return jnp.stack(columns, axis=-1)


def self_attention_metrics(outputs: dict[str, jax.Array], attention_mask: jax.Array) -> jax.Array:
    """Reducer: metrics of `outputs["attentions"]` -> [batch, layer, head, metric].

    The step supplies `key_visible`, one [batch, query, key] mask per layer (padding and, for
    causal models, the causal mask and any sliding window), and `special_mask` [batch, token]
    with the batch inputs.
    """
    return head_metrics(
        outputs["attentions"], attention_mask, outputs["key_visible"], outputs["special_mask"]
    )


def cross_attention_metrics(
    attentions: jax.Array, query_mask: jax.Array, key_mask: jax.Array, special: jax.Array
) -> jax.Array:
    """Metrics of cross-attention [batch, layer, head, query, key] -> [batch, layer, head, metric].

    Queries are decoder tokens (`query_mask` [batch, query]), keys encoder tokens (`key_mask`,
    `special` [batch, key]); every query sees every real key. `CROSS_UNDEFINED` metrics are NaN.
    """
    visible = key_visibility(query_mask, key_mask)
    values = head_metrics(attentions, query_mask, visible, special)
    undefined = jnp.array([name in CROSS_UNDEFINED for name in METRICS])
    return jnp.where(undefined, jnp.nan, values)


def seq2seq_metrics(probes: dict[str, jax.Array], masks: tuple, specials: tuple) -> dict:
    """Decoder self-attention and cross-attention metrics of an encoder-decoder's probes.

    Args:
        probes: decoder_attentions [batch, layer, head, target, target] and cross_attentions
            [batch, layer, head, target, token].
        masks: (encoder [batch, token], decoder [batch, target]) padding masks.
        specials: (encoder, decoder) special-token masks, same shapes.

    Returns:
        decoder_head_metrics, cross_head_metrics: [batch, layer, head, metric] float32.
    """
    (encoder, decoder), (encoder_special, decoder_special) = masks, specials
    causal = key_visibility(decoder, causal=True)
    return {
        "decoder_head_metrics": head_metrics(
            probes["decoder_attentions"], decoder, causal, decoder_special
        ),
        "cross_head_metrics": cross_attention_metrics(
            probes["cross_attentions"], decoder, encoder, encoder_special
        ),
    }


def head_metrics_shape(config) -> tuple[int, int, int]:
    """Return the per-text shape (layer, head, metric)."""
    return (config.n_layers, config.n_heads, len(METRICS))
