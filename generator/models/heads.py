"""Task heads on top of a transformer body, shared by the families.

Each head maps the final hidden states to `logits`:
  masked-lm / causal-lm          [batch, token, vocab]
  permutation-lm                 [batch, token, vocab]  (XLNet's lm_loss on the content stream)
  classification                 [batch, n_labels]  (first token, pooler, or last real token)
  token-classification           [batch, token, n_labels]
  replaced-token-detection       [batch, token]      (ELECTRA discriminator)
  next-sentence                  [batch, 2]          (BERT pre-training, on the pooler output)
  sentence-order                 [batch, 2]          (ALBERT pre-training, on the pooler output)

Module attribute names are generic (`dense`, `norm`, `out`); each family's name map translates
them to its checkpoint names (`cls.predictions.transform.dense`, `lm_head.layer_norm`, ...).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from generator.models.layers import (
    ACTIVATION_FNS,
    COMPUTE_DTYPES,
    PRECISIONS,
    last_token,
    layer_norm,
    linear,
    ordered_probes,
)

HEAD_KINDS = (
    "masked-lm",
    "causal-lm",
    "permutation-lm",
    "classification",
    "token-classification",
    "replaced-token-detection",
    "next-sentence",
    "sentence-order",
)


def unembed(x: jax.Array, matrix: jax.Array, dtype: str) -> jax.Array:
    """Project [batch, token, d] onto the rows of a tied [vocab, d] embedding -> [batch, token, vocab]."""
    weights = matrix.astype(COMPUTE_DTYPES[dtype])
    return jnp.einsum("btd,vd->btv", x, weights, precision=PRECISIONS[dtype])


class MaskedLMHead(nnx.Module):
    """dense -> activation -> LayerNorm -> unembedding (tied or `decoder`) + `bias`.

    The transform maps d_model to `width` (d_model; ALBERT: its embedding_size, the width of
    the tied unembedding).
    """

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        activation: str,
        eps: float,
        tied: bool,
        dtype: str,
        rngs: nnx.Rngs,
        width: int | None = None,
    ):
        width = width or d_model
        self.dense = linear(d_model, width, dtype, rngs)
        self.norm = layer_norm(width, eps, dtype, rngs)
        self.bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32))
        self.decoder = None if tied else linear(width, vocab_size, dtype, rngs, bias=False)
        self.activation = activation
        self.dtype = dtype

    def __call__(self, x: jax.Array, embedding: jax.Array) -> jax.Array:
        """Return [batch, token, vocab] logits; `embedding` [vocab, d] is used when tied."""
        h = self.norm(ACTIVATION_FNS[self.activation](self.dense(x)))
        logits = unembed(h, embedding, self.dtype) if self.decoder is None else self.decoder(h)
        return logits + self.bias[...].astype(logits.dtype)


class ClassificationHead(nnx.Module):
    """Sequence classifier: pick a summary vector, optional dense + activation, then `out`.

    `source` says which vector: "pooler" (BERT: the pooler output), "first" (RoBERTa, ELECTRA,
    DistilBERT: the first token's final hidden state) or "last" (decoders: the last real token).
    `activation` None means no hidden dense layer.
    """

    def __init__(
        self,
        d_model: int,
        n_labels: int,
        source: str,
        activation: str | None,
        dtype: str,
        rngs: nnx.Rngs,
        out_bias: bool = True,
    ):
        self.dense = linear(d_model, d_model, dtype, rngs) if activation else None
        self.out = linear(d_model, n_labels, dtype, rngs, bias=out_bias)
        self.source = source
        self.activation = activation

    def __call__(
        self, hidden: jax.Array, attention_mask: jax.Array, pooled: jax.Array | None
    ) -> jax.Array:
        """Return [batch, n_labels] logits from final hidden states [batch, token, d_model]."""
        if self.source == "pooler":
            x = pooled
        elif self.source == "first":
            x = hidden[:, 0]
        else:
            x = last_token(hidden, attention_mask)
        if self.dense is not None:
            x = ACTIVATION_FNS[self.activation](self.dense(x))
        return self.out(x)


class TokenClassificationHead(nnx.Module):
    """One linear classifier applied to every token: [batch, token, n_labels]."""

    def __init__(self, d_model: int, n_labels: int, dtype: str, rngs: nnx.Rngs):
        self.out = linear(d_model, n_labels, dtype, rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        """Return per-token logits."""
        return self.out(hidden)


class ReplacedTokenHead(nnx.Module):
    """ELECTRA discriminator: dense -> activation -> dense_prediction, one logit per token."""

    def __init__(self, d_model: int, activation: str, dtype: str, rngs: nnx.Rngs):
        self.dense = linear(d_model, d_model, dtype, rngs)
        self.dense_prediction = linear(d_model, 1, dtype, rngs)
        self.activation = activation

    def __call__(self, hidden: jax.Array) -> jax.Array:
        """Return [batch, token] logits (positive: the token was replaced)."""
        x = ACTIVATION_FNS[self.activation](self.dense(hidden))
        return self.dense_prediction(x)[..., 0]


class CausalLMHead(nnx.Module):
    """Unembedding of a decoder: the tied token embedding or its own `weight` (lm_head)."""

    def __init__(self, d_model: int, vocab_size: int, tied: bool, dtype: str, rngs: nnx.Rngs):
        self.out = None if tied else linear(d_model, vocab_size, dtype, rngs, bias=False)
        self.dtype = dtype

    def __call__(self, hidden: jax.Array, embedding: jax.Array) -> jax.Array:
        """Return [batch, token, vocab] next-token logits."""
        return unembed(hidden, embedding, self.dtype) if self.out is None else self.out(hidden)


def decoder_heads(config, dtype: str, rngs: nnx.Rngs):
    """Return (lm_head, score) of a decoder-only model: a causal-LM head and a classification
    head read at the last real token, each None unless the checkpoint has it."""
    heads = set(config.heads)
    lm_head = (
        CausalLMHead(config.d_model, config.vocab_size, config.tie_word_embeddings, dtype, rngs)
        if "causal-lm" in heads
        else None
    )
    score = (
        ClassificationHead(
            config.d_model, len(config.labels), "last", None, dtype, rngs, out_bias=False
        )
        if "classification" in heads
        else None
    )
    return lm_head, score


def at_positions(x: jax.Array, positions: jax.Array | None) -> jax.Array:
    """Rows [batch, 1, d] of x [batch, token, d] at `positions` [batch] (None: x unchanged).

    An LM head reads each token alone, so unembedding these rows equals reading its
    [batch, token, vocab] logits there, without building them.
    """
    if positions is None:
        return x
    return jnp.take_along_axis(x, jnp.asarray(positions, jnp.int32)[:, None, None], axis=1)


def decoder_outputs(
    hidden: jax.Array,
    probes: dict,
    final: jax.Array,
    model,
    table: jax.Array,
    *,
    attention_mask,
    positions: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """Return a decoder-only model's outputs after its final norm (`final`, [batch, token, d]).

    hidden [batch, layer(L+1), token, d_model] and probes {name: [batch, layer, ...]} are the
    stacked layer outputs; hidden_states replace the last layer by the normed output (as
    transformers reports it); logits come from `model.lm_head` (tied to `table` when it says
    so; [batch, 1, vocab] at `positions` [batch] when given, see `at_positions`) or from
    `model.score` read at the last real token, whichever the model has.
    """
    hidden = hidden.at[:, -1].set(final)
    out = {"hidden_states": hidden, **ordered_probes(probes)}
    if model.lm_head is not None:
        out["logits"] = model.lm_head(at_positions(final, positions), table)
    elif model.score is not None:
        out["logits"] = model.score(final, attention_mask, None)
    return out
