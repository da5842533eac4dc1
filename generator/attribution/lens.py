"""Logit lens: read every layer's residual stream through the final norm and the unembedding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from generator.attribution.objectives import word_embedding_table


def is_encoder_decoder(model: nnx.Module) -> bool:
    """Return True for encoder-decoder models (T5): their lens reads the decoder's layers."""
    return model.config.seq2seq


def has_lens(model: nnx.Module) -> bool:
    """Return True when the model has an LM head to read layers through."""
    return (
        getattr(model, "mlm_head", None) is not None
        or getattr(model, "lm_head", None) is not None
        or is_encoder_decoder(model)
    )


def lens_logits(model: nnx.Module, hidden: jax.Array) -> jax.Array:
    """Map hidden states [batch, layer(L+1), token, d] to logits [batch, layer, token, vocab].

    Masked LMs apply their whole MLM head (transform + unembedding) to each layer. Decoders apply
    the final norm, then the unembedding; their last entry is already normed (it is the model's
    own final output) and is unembedded as is. Encoder-decoders do the same with the decoder's
    layers [batch, layer(Ld+1), target, d], its `final_layer_norm` and the model's `logits`
    (which rescales tied outputs as the model does).
    """
    batch, layers, token, width = hidden.shape
    table = word_embedding_table(model)
    if getattr(model, "mlm_head", None) is not None:
        flat = hidden.reshape(batch * layers, token, width)
        return model.mlm_head(flat, table).reshape(batch, layers, token, -1)
    if is_encoder_decoder(model):
        norm, unembed = model.decoder.final_layer_norm, model.logits
    else:
        norm = getattr(model, "ln_f", None) or getattr(model, "norm", None)
        unembed = lambda x: model.lm_head(x, table)  # noqa: E731
    inner = norm(hidden[:, :-1].reshape(batch * (layers - 1), token, width))
    inner = inner.reshape(batch, layers - 1, token, width)
    normed = jnp.concatenate([inner, hidden[:, -1:]], axis=1)
    flat = normed.reshape(batch * layers, token, width)
    return unembed(flat).reshape(batch, layers, token, -1)


def lens_summary(logits: jax.Array, k: int) -> dict[str, jax.Array]:
    """Top-k tokens per layer and position, and the rank/probability of the final prediction.

    Args:
        logits: [batch, layer, token, vocab].

    Returns:
        top_ids, top_probs [batch, layer, token, k]; final_id [batch, token] (the last layer's
        argmax); final_rank (0 = top), final_prob [batch, layer, token].
    """
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    top_probs, top_ids = jax.lax.top_k(probs, k)
    final_id = jnp.argmax(logits[:, -1], axis=-1)  # [batch, token]
    final_prob = jnp.take_along_axis(probs, final_id[:, None, :, None], axis=-1)[..., 0]
    final_rank = jnp.sum(probs > final_prob[..., None], axis=-1)
    return {
        "top_ids": top_ids,
        "top_probs": top_probs,
        "final_id": final_id,
        "final_rank": final_rank,
        "final_prob": final_prob,
    }
