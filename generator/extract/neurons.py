"""MLP neurons over the whole corpus: running statistics and top-activating tokens per neuron.

The probe is `mlp_activations` [batch, layer, token, d_mlp]: each block's MLP hidden activation
after its non-linearity (SwiGLU / gated T5: act(gate) * up), the input of the down-projection.
Nothing [text, token, layer, d_mlp] is ever kept: the jitted corpus step reduces every batch,
per layer (mapped over the layer axis), to [layer, d_mlp] sums, maxima, minima and positive counts and to the
`TOP_CONTEXTS` largest activations of every neuron (`jax.lax.top_k` over the batch's tokens);
`NeuronStats` merges those on the host into corpus-wide values. Padding never counts; special
tokens do.

Stored arrays (axes; float32 unless said):
  neurons/mean            [layer, d_mlp]  mean activation over the corpus's non-padding tokens
  neurons/max, neurons/min [layer, d_mlp]  largest / smallest activation
  neurons/positive        [layer, d_mlp]  fraction of tokens with activation > 0
  neurons/ranked          [layer, rank]   neuron ids by decreasing max (all d_mlp neurons, or
                                          the STORED_NEURONS first when layer·d_mlp·k > ALL_LIMIT)
  neurons/top_values      [layer, rank, k]  the k largest activations of neuron ranked[l, r]
  neurons/top_text        [layer, rank, k]  int32 corpus text of each (-1: fewer tokens than k)
  neurons/top_position    [layer, rank, k]  int32 token position in that text
The showcase step then keeps, per example, the activations of the SHOWCASE_NEURONS first
neurons of `ranked` per layer: showcase/mlp_top [example, layer, token, neuron] (store dtype)
and showcase/mlp_top_neurons [layer, neuron] int32 (their ids).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from generator.extract.layer_loop import over_layers

ANALYSIS = "neurons"  # the card's `analyses` name
TOP_CONTEXTS = 8  # k: top-activating tokens kept per neuron
ALL_LIMIT = 1 << 20  # keep the top-k of every neuron while layers * d_mlp * k stays below this
STORED_NEURONS = 256  # otherwise: the neurons of largest max per layer
SHOWCASE_NEURONS = 32  # neurons per layer of the showcase token x neuron view
PROBE = "mlp_activations"


def wanted(card) -> bool:
    """Return whether the card asks for the neuron analysis (its `analyses` key)."""
    return ANALYSIS in card.selected_analyses


def mlp_probe(outputs) -> jax.Array:
    """Return the MLP activations [batch, layer, token, d_mlp] (encoder ones when prefixed)."""
    return outputs[PROBE] if PROBE in outputs else outputs[f"encoder_{PROBE}"]


def layer_stats(x: jax.Array, visible: jax.Array, k: int) -> dict[str, jax.Array]:
    """Reduce one layer's [batch, token, d_mlp] activations over the visible tokens.

    Returns:
        sum, max, min, positive [d_mlp] (float32) and top_values, top_index [d_mlp, k]: the k
        largest activations of each neuron and their flat index row * token + position.
    """
    x = x.astype(jnp.float32)
    batch, tokens, width = x.shape
    seen = visible[:, :, None]
    masked = jnp.where(seen, x, -jnp.inf)
    values, index = jax.lax.top_k(masked.reshape(batch * tokens, width).T, k)
    return {
        "sum": jnp.sum(jnp.where(seen, x, 0.0), axis=(0, 1)),
        "max": jnp.max(masked, axis=(0, 1)),
        "min": jnp.min(jnp.where(seen, x, jnp.inf), axis=(0, 1)),
        # counted in float32 (exact below 2^24 tokens per batch): an integer sum of booleans
        # ran ~10x slower on the CPU (8 % of a bert-base corpus step)
        "positive": jnp.sum(jnp.where(seen & (x > 0), 1.0, 0.0), axis=(0, 1)),
        "top_values": values,
        "top_index": index.astype(jnp.int32),
    }


def batch_stats(outputs, attention_mask) -> dict[str, jax.Array]:
    """Reduce a batch's MLP activations per layer -> {name: [layer, d_mlp(, k)]} (`over_layers`)."""
    x = mlp_probe(outputs)
    visible = attention_mask.astype(bool)
    k = min(TOP_CONTEXTS, x.shape[0] * x.shape[2])
    return over_layers(lambda layer: layer_stats(layer, visible, k), x)


REDUCER_SPEC = {
    "name": "neurons",
    "axes": (),
    "shape": lambda c: (),
    "fn": batch_stats,
    "stored": False,  # merged over batches by NeuronStats, not streamed per text
}


def stored_count(n_layers: int, d_mlp: int, k: int = TOP_CONTEXTS) -> int:
    """Return how many neurons per layer keep their top-k contexts (the storage rule)."""
    return d_mlp if n_layers * d_mlp * k <= ALL_LIMIT else min(STORED_NEURONS, d_mlp)


def merge_top(kept: tuple, new: tuple, k: int) -> tuple:
    """Keep the k largest of two [layer, d_mlp, *] candidate sets (earlier ones first on ties).

    Args:
        kept: (values, texts, positions) kept so far.
        new: (values, texts, positions) of one batch.
        k: how many to keep.
    """
    values, texts, positions = (
        np.concatenate(pair, axis=-1) for pair in zip(kept, new, strict=True)
    )
    order = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    take = lambda a: np.take_along_axis(a, order, axis=-1)  # noqa: E731
    return take(values), take(texts), take(positions)


class NeuronStats:
    """Host-side merge of `batch_stats` over the batches of one corpus pass."""

    def __init__(self, n_layers: int, d_mlp: int, k: int = TOP_CONTEXTS):
        shape = (n_layers, d_mlp)
        self.k = k
        self.sum = np.zeros(shape, np.float64)
        self.max = np.full(shape, -np.inf, np.float32)
        self.min = np.full(shape, np.inf, np.float32)
        self.positive = np.zeros(shape, np.float64)
        self.tokens = 0
        self.top_values = np.full((*shape, k), -np.inf, np.float32)
        self.top_text = np.full((*shape, k), -1, np.int32)
        self.top_position = np.full((*shape, k), -1, np.int32)

    def add(self, out: dict, batch, attention_mask: np.ndarray) -> None:
        """Merge one batch's `out["neurons"]`; `batch.rows` maps its rows to corpus texts."""
        stats = out["neurons"]
        self.sum += np.asarray(stats["sum"], np.float64)
        self.max = np.maximum(self.max, stats["max"])
        self.min = np.minimum(self.min, stats["min"])
        self.positive += np.asarray(stats["positive"], np.float64)
        self.tokens += int(np.asarray(attention_mask).sum())
        values = np.asarray(stats["top_values"], np.float32)
        index = np.asarray(stats["top_index"], np.int64)
        row, position = np.divmod(index, batch.bucket)
        rows = np.asarray(batch.rows)
        real = np.isfinite(values) & (row < len(rows))
        texts = np.where(real, rows[np.minimum(row, len(rows) - 1)], -1).astype(np.int32)
        values = np.where(real, values, -np.inf).astype(np.float32)
        position = np.where(real, position, -1).astype(np.int32)
        kept = (self.top_values, self.top_text, self.top_position)
        self.top_values, self.top_text, self.top_position = merge_top(
            kept, (values, texts, position), self.k
        )

    def ranked(self) -> np.ndarray:
        """Return [layer, d_mlp] neuron ids by decreasing corpus-wide max (ties: lower id)."""
        return np.argsort(-self.max, axis=1, kind="stable").astype(np.int32)

    def write(self, writer) -> np.ndarray:
        """Store the neuron arrays; return [layer, SHOWCASE_NEURONS] ids for the showcase."""
        n_layers, d_mlp = self.max.shape
        ranked = self.ranked()[:, : stored_count(n_layers, d_mlp, self.k)]
        tokens = max(self.tokens, 1)
        writer.write_array("neurons/mean", (self.sum / tokens).astype(np.float32), AXES)
        writer.write_array("neurons/max", self.max, AXES)
        writer.write_array("neurons/min", self.min, AXES)
        writer.write_array("neurons/positive", (self.positive / tokens).astype(np.float32), AXES)
        writer.write_array("neurons/ranked", ranked, ("layer", "rank"))
        for name in ("top_values", "top_text", "top_position"):
            chosen = np.take_along_axis(getattr(self, name), ranked[:, :, None], axis=1)
            writer.write_array(f"neurons/{name}", chosen, ("layer", "rank", "k"))
        return ranked[:, :SHOWCASE_NEURONS]

    def details(self) -> dict:
        """Return the manifest facts of the neuron statistics."""
        n_layers, d_mlp = self.max.shape
        return {
            "tokens": int(self.tokens),
            "top_contexts": self.k,
            "stored_neurons": stored_count(n_layers, d_mlp, self.k),
            "showcase_neurons": min(SHOWCASE_NEURONS, d_mlp),
            "d_mlp": int(d_mlp),
        }


AXES = ("layer", "d_mlp")


def showcase_top(mlp: jax.Array, neuron_ids: jax.Array) -> jax.Array:
    """Gather [example, layer, token, d_mlp] at [layer, neuron] ids -> [example, layer, token, neuron]."""
    return jnp.take_along_axis(mlp, neuron_ids[None, :, None, :], axis=3)


def start(card, config) -> NeuronStats | None:
    """Return the host merge of the neuron statistics, or None when they are not asked for.

    The corpus step needs the neuron reducer (`REDUCER_SPEC`) beside it.

    Args:
        card: the model card (its `analyses` key decides).
        config: the model config (n_layers, d_mlp).
    """
    if not wanted(card) or not config.d_mlp:
        return None
    return NeuronStats(config.n_layers, config.d_mlp)


def skipped(card) -> dict:
    """Return the manifest entry of a card whose neuron statistics were not computed."""
    listed = ", ".join(card.analyses or ())
    return {"skipped": f"the card's `analyses` list ({listed}) does not name '{ANALYSIS}'"}
