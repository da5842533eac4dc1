"""Activation statistics over the whole corpus, reduced per text inside the jitted corpus step.

Histograms use fixed logarithmic bins (`LogGrid`). Values: magnitudes m_k = 10^(-3 + k/16),
k = 0..128 (1e-3 .. 1e5, 16 bins per decade: a bin spans a factor of 1.155), mirrored for
negative values, plus one central bin (-1e-3, 1e-3). Norms: edges 0, then 10^(-2 + k/64) up to
1e5 (64 bins per decade: a factor of 1.037). Values beyond the outer edges count in the
outermost bins. Counting per text and layer and summing
in the analyze stage gives exact corpus-wide counts; quantiles are then read from the summed
histogram by linear interpolation inside a bin (error below one bin width).

Per-text reducers (axes after `text`; layer = L+1 for hidden states, embeddings first):
  act_hist_hidden    [layer, bin]  hidden-state values over non-padding tokens and all dims
  act_hist_queries   [layer, bin]  query values (after bias, before scaling), all heads
  act_hist_keys      [layer, bin]
  act_hist_values    [layer, bin]
  act_hist_mlp       [layer, bin]  MLP hidden activations (after the non-linearity), all neurons
  residual_norm_hist [layer, bin]  per-token L2 norm of the hidden state (the norm grid)
  residual_norm_sum  [layer]       Σ of those norms (exact mean = sum / tokens)
  act_extreme        [layer, dim]  the signed hidden value of largest |value| over the tokens
  act_extreme_pos    [layer, dim]  its token position (float32; exact below 2^24)
  score_hist         [layer, head, bin]  attention scores before the softmax (the `VALUES` grid)
                     of every real query over its visible keys; summed over the corpus on the
                     host (reducers.Reducer.summed): corpus/score_hist has no text axis
All are stored as float32 (counts are exact below 2^24 per text and layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from generator.extract.layer_loop import by_mask_group, over_layers
from generator.extract.neurons import mlp_probe


@dataclass(frozen=True)
class LogGrid:
    """Fixed logarithmic histogram bins: magnitudes m_k = 10^(low + k/per_decade), k = 0..K.

    Symmetric grids mirror the magnitudes for negative values around one central bin
    (-m_0, m_0): edges [-m_K, ..., -m_0, m_0, ..., m_K], 2K+1 bins. Positive grids (norms)
    have edges [0, m_0, ..., m_K], K+1 bins. Values beyond the outermost edges count in the
    outermost bins.
    """

    low: int
    high: int
    per_decade: int
    symmetric: bool

    @property
    def steps(self) -> int:
        """Return K, the magnitude steps."""
        return (self.high - self.low) * self.per_decade

    @property
    def bins(self) -> int:
        """Return the number of bins."""
        return 2 * self.steps + 1 if self.symmetric else self.steps + 1

    def edges(self) -> np.ndarray:
        """Return the bin edges (float64)."""
        magnitudes = 10.0 ** (self.low + np.arange(self.steps + 1) / self.per_decade)
        if self.symmetric:
            return np.concatenate([-magnitudes[::-1], magnitudes])
        return np.concatenate([[0.0], magnitudes])

    def index(self, x: jax.Array) -> jax.Array:
        """Return the int32 bin of every value of `x`."""
        magnitude = jnp.abs(x.astype(jnp.float32))
        step = jnp.floor((jnp.log10(jnp.maximum(magnitude, 1e-30)) - self.low) * self.per_decade)
        step = jnp.clip(step, -1, self.steps - 1).astype(jnp.int32)  # -1: below m_0
        if not self.symmetric:
            return step + 1
        k = self.steps
        index = jnp.where(step < 0, k, jnp.where(x >= 0, k + 1 + step, k - 1 - step))
        return jnp.clip(index, 0, self.bins - 1)


VALUES = LogGrid(low=-3, high=5, per_decade=16, symmetric=True)  # 1e-3 .. 1e5, 257 bins
NORMS = LogGrid(low=-2, high=5, per_decade=64, symmetric=False)  # 0, 1e-2 .. 1e5, 449 bins


def weighted_histograms(x: jax.Array, weight: jax.Array, grid: LogGrid = VALUES) -> jax.Array:
    """Count [batch, row, ...] values per (batch, row), each with its weight (0: not counted).

    Returns:
        [batch, row, bin] float32 counts.
    """
    batch, rows = x.shape[:2]
    bins = grid.bins
    weight = jnp.broadcast_to(weight.astype(jnp.float32), x.shape)
    trailing = (None,) * (x.ndim - 2)
    row = (jnp.arange(batch)[:, None] * rows + jnp.arange(rows)[None, :])[(..., *trailing)]
    segments = row * bins + grid.index(x)
    counts = jax.ops.segment_sum(weight.ravel(), segments.ravel(), num_segments=batch * rows * bins)
    return counts.reshape(batch, rows, bins)


def layer_histograms(x: jax.Array, attention_mask: jax.Array, grid: LogGrid = VALUES) -> jax.Array:
    """Count [batch, layer, token, feature] values per (batch, layer) over non-padding tokens.

    Returns:
        [batch, layer, bin] float32 counts.
    """
    return weighted_histograms(x, attention_mask[:, None, :, None], grid)


def score_histogram(outputs, attention_mask):
    """Histogram of attention scores before the softmax -> [batch, layer, head, bin].

    Counts the scores of every real query over the keys it can see (`key_visible`: padding,
    causal mask, sliding window), one layer at a time in an in-program loop.
    """
    scores = _probe(outputs, "attention_scores")  # [batch, layer, head, query, key]
    real = attention_mask.astype(bool)[:, None, :, None]  # [batch, 1, query, 1]

    def counts(maps, visible):  # one layer [batch, head, query, key] -> [batch, head, bin]
        return weighted_histograms(maps, real & visible[:, None])

    return by_mask_group(counts, scores, outputs["key_visible"])


def _probe(outputs, name: str) -> jax.Array:
    """Return a probe point as float32 (encoder probes of an encoder-decoder when prefixed)."""
    value = outputs[name] if name in outputs else outputs[f"encoder_{name}"]
    return value.astype(jnp.float32)


def hidden_histogram(outputs, attention_mask):
    """Histogram of hidden-state values -> [batch, layer(L+1), bin]."""
    return layer_histograms(_probe(outputs, "hidden_states"), attention_mask)


def projection_histogram(name: str):
    """Return the reducer function for the histogram of `queries`, `keys` or `values`.

    The probe is [batch, layer, head, token, d_head]; counts do not depend on the order of the
    values, so heads are counted in place (no [token, head·d_head] copy).
    """

    def reduce(outputs, attention_mask):
        weight = attention_mask[:, None, None, :, None]  # [batch, 1, 1, token, 1]
        return weighted_histograms(_probe(outputs, name), weight)

    return reduce


def mlp_histogram(outputs, attention_mask):
    """Histogram of MLP hidden activations -> [batch, layer, bin], one layer at a time.

    `over_layers`: the working set is one layer's [batch, token, d_mlp] (d_mlp is 3-4x d_model)
    and the loop is compiled once whatever the depth.
    """

    def count(layer):  # [batch, token, d_mlp] -> [batch, bin]
        return layer_histograms(layer[:, None].astype(jnp.float32), attention_mask)[:, 0]

    return jnp.moveaxis(over_layers(count, mlp_probe(outputs)), 0, 1)


def residual_norms(outputs) -> jax.Array:
    """Return per-token L2 norms of the hidden states, [batch, layer, token, 1]."""
    hidden = _probe(outputs, "hidden_states")
    return jnp.sqrt(jnp.sum(hidden * hidden, axis=-1, keepdims=True))


def residual_norm_histogram(outputs, attention_mask):
    """Histogram of per-token residual-stream norms -> [batch, layer, bin]."""
    return layer_histograms(residual_norms(outputs), attention_mask, NORMS)


def residual_norm_sum(outputs, attention_mask):
    """Sum of per-token residual-stream norms over non-padding tokens -> [batch, layer]."""
    mask = attention_mask.astype(jnp.float32)[:, None, :]
    return jnp.sum(residual_norms(outputs)[..., 0] * mask, axis=-1)


def _extreme_position(outputs, attention_mask) -> jax.Array:
    """Token position of the largest |hidden value| per (batch, layer, dim) -> int32."""
    hidden = _probe(outputs, "hidden_states")
    visible = attention_mask.astype(bool)[:, None, :, None]
    magnitude = jnp.where(visible, jnp.abs(hidden), -1.0)
    return jnp.argmax(magnitude, axis=2)


def extreme_values(outputs, attention_mask):
    """Signed hidden value of largest magnitude over the tokens -> [batch, layer, d_model]."""
    hidden = _probe(outputs, "hidden_states")
    position = _extreme_position(outputs, attention_mask)
    return jnp.take_along_axis(hidden, position[:, :, None, :], axis=2)[:, :, 0, :]


def extreme_positions(outputs, attention_mask):
    """Token position of that value -> [batch, layer, d_model] (float32)."""
    return _extreme_position(outputs, attention_mask).astype(jnp.float32)


def _hidden_layers(config) -> int:
    return config.n_layers + 1


REDUCER_SPECS = (
    {
        "name": "act_hist_hidden",
        "axes": ("layer", "bin"),
        "shape": lambda c: (_hidden_layers(c), VALUES.bins),
        "fn": hidden_histogram,
    },
    *(
        {
            "name": f"act_hist_{name}",
            "axes": ("layer", "bin"),
            "shape": lambda c: (c.n_layers, VALUES.bins),
            "fn": projection_histogram(name),
        }
        for name in ("queries", "keys", "values")
    ),
    {
        "name": "act_hist_mlp",
        "axes": ("layer", "bin"),
        "shape": lambda c: (c.n_layers, VALUES.bins),
        "fn": mlp_histogram,
    },
    {
        "name": "residual_norm_hist",
        "axes": ("layer", "bin"),
        "shape": lambda c: (_hidden_layers(c), NORMS.bins),
        "fn": residual_norm_histogram,
    },
    {
        "name": "residual_norm_sum",
        "axes": ("layer",),
        "shape": lambda c: (_hidden_layers(c),),
        "fn": residual_norm_sum,
    },
    {
        "name": "act_extreme",
        "axes": ("layer", "d_model"),
        "shape": lambda c: (_hidden_layers(c), c.d_model),
        "fn": extreme_values,
    },
    {
        "name": "act_extreme_pos",
        "axes": ("layer", "d_model"),
        "shape": lambda c: (_hidden_layers(c), c.d_model),
        "fn": extreme_positions,
    },
)
REDUCER_SPECS = tuple({**spec, "in_store_dtype": False} for spec in REDUCER_SPECS)


def write_corpus_tokens(writer, tokenizer, token_ids) -> None:
    """Store what the activation analysis needs to name tokens, and the histogram edges.

    corpus/input_ids [text, token] int32 (-1 past the end), corpus/vocab_ids [entry] (the
    distinct ids of the corpus, sorted), corpus/vocab_tokens [entry] their strings, and the
    bin edges corpus/act_edges and corpus/norm_edges [edge] float64.
    """
    from generator.extract.stored_strings import strings_array

    width = max(len(ids) for ids in token_ids)
    padded = np.full((len(token_ids), width), -1, dtype=np.int32)
    for row, ids in enumerate(token_ids):
        padded[row, : len(ids)] = ids
    vocab = np.unique(padded[padded >= 0]).astype(np.int32)
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in vocab])
    writer.write_array("corpus/input_ids", padded, ("text", "token"))
    writer.write_array("corpus/vocab_ids", vocab, ("entry",))
    writer.write_array("corpus/vocab_tokens", strings_array(tokens), ("entry",))
    writer.write_array("corpus/act_edges", VALUES.edges(), ("edge",))
    writer.write_array("corpus/norm_edges", NORMS.edges(), ("edge",))
