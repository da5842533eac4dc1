"""T5 encoder-decoder in Flax NNX, with named probe points, numerically matching `transformers`.

The attribute tree mirrors the Hugging Face checkpoint names (`shared`,
`encoder.block[i].layer[0].SelfAttention.q`, `decoder.block[i].layer[1].EncDecAttention.k`,
`decoder.final_layer_norm`, `lm_head`), so loading is a name mapping.

What makes T5 T5:
  * RMS-style LayerNorm: x * rsqrt(mean(x**2) + eps) * weight, no mean subtraction, no bias;
    pre-norm blocks, and one final norm per stack.
  * No 1/sqrt(d_head) scaling of QK (T5 folds it into the initialisation).
  * Relative position buckets: only the first block of each stack owns a
    `relative_attention_bias` table [bucket, head]; its bias [head, query, key] is shared by
    every block of the stack. Bidirectional in the encoder, causal in the decoder; none in
    cross-attention.
  * MLP: ReLU (`wi`, `wo`) or gated (`act(wi_0 x) * wi_1 x`, then `wo`) for v1.1.
  * LM head: tied to `shared` (decoder output scaled by d_model**-0.5 first) or own `lm_head`.

Axes: batch, token (encoder), target (decoder token), layer, head, d_model, d_head, d_mlp,
vocab. Inference only: no dropout. Parameters are float32; `dtype` is the compute dtype, and
softmax and norm statistics always run in float32.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from generator.models.kv_cache import Cache, attend_cached, cache_bias
from generator.models.layers import (
    ACTIVATION_FNS,
    COMPUTE_DTYPES,
    PRECISIONS,
    layer_first,
    linear,
    scan_blocks,
    with_input,
)
from generator.models.t5_config import T5Config

NEG = float(jnp.finfo(jnp.float32).min)


def relative_position_bucket(
    relative_position: jax.Array, bidirectional: bool, num_buckets: int, max_distance: int
) -> jax.Array:
    """Map relative positions (key - query) to bucket ids in [0, num_buckets), as Mesh TF does.

    Half of the buckets (per direction when bidirectional) hold exact small distances, the
    rest logarithmically wider ranges up to `max_distance`; farther distances share the last.
    Causal (not bidirectional): positive positions (future keys) all fall in bucket 0.
    """
    buckets = jnp.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).astype(relative_position.dtype) * num_buckets
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # float32 log, truncated towards zero, as PyTorch's .to(torch.long) does.
    scaled = (
        jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    )
    large = max_exact + scaled.astype(relative_position.dtype)
    large = jnp.minimum(large, num_buckets - 1)
    return buckets + jnp.where(is_small, distance, large)


class T5LayerNorm(nnx.Module):
    """RMS norm without mean subtraction or bias: x * rsqrt(mean(x**2) + eps) * weight.

    Unlike `layers.RMSNorm` (Llama), the weight multiplies in float32 and only the product is
    cast to the compute dtype, as transformers' T5LayerNorm does (and its variance squares with
    `jnp.square`, whose gradient rounds differently from Llama's `x * x`: kept so that stored
    attributions stay bit-identical).
    """

    def __init__(self, d_model: int, eps: float, dtype: str):
        self.scale = nnx.Param(jnp.ones((d_model,), jnp.float32))
        self.eps = eps
        self.dtype = COMPUTE_DTYPES[dtype]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalise [..., d_model] with float32 statistics; return the compute dtype."""
        x32 = x.astype(jnp.float32)
        variance = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        return (self.scale[...] * (x32 * jax.lax.rsqrt(variance + self.eps))).astype(self.dtype)


class T5Attention(nnx.Module):
    """Multi-head attention without QK scaling; the first block's also owns the position bias."""

    def __init__(
        self,
        config: T5Config,
        dtype: str,
        rngs: nnx.Rngs,
        *,
        has_relative_bias: bool = False,
        bidirectional: bool = True,
    ):
        self.n_heads, self.d_head = config.n_heads, config.d_head
        self.precision = PRECISIONS[dtype]
        inner = config.n_heads * config.d_head
        self.q = linear(config.d_model, inner, dtype, rngs, bias=False)
        self.k = linear(config.d_model, inner, dtype, rngs, bias=False)
        self.v = linear(config.d_model, inner, dtype, rngs, bias=False)
        self.o = linear(inner, config.d_model, dtype, rngs, bias=False)
        self.bidirectional = bidirectional
        self.num_buckets = config.relative_buckets
        self.max_distance = config.relative_max_distance
        self.relative_attention_bias = (
            nnx.Embed(
                config.relative_buckets,
                config.n_heads,
                dtype=jnp.float32,
                param_dtype=jnp.float32,
                rngs=rngs,
            )
            if has_relative_bias
            else None
        )

    def position_bias(self, n_query: int, n_key: int) -> jax.Array:
        """Return the relative position bias [1, head, query, key] (float32)."""
        return self.position_bias_at(jnp.arange(n_query, dtype=jnp.int32)[None], n_key)

    def position_bias_at(self, positions: jax.Array, n_key: int) -> jax.Array:
        """Return the bias [batch, head, query, key] of queries at `positions` [batch, query]
        over keys at positions 0..n_key-1 (float32)."""
        query = jnp.asarray(positions, jnp.int32)[:, :, None]
        key = jnp.arange(n_key, dtype=jnp.int32)[None, None, :]
        buckets = relative_position_bucket(
            key - query, self.bidirectional, self.num_buckets, self.max_distance
        )
        values = self.relative_attention_bias(buckets)  # [batch, query, key, head]
        return values.transpose(0, 3, 1, 2)

    def _heads(self, x: jax.Array) -> jax.Array:
        """Split [batch, token, head * d_head] into [batch, head, token, d_head]."""
        batch, token, _ = x.shape
        return x.reshape(batch, token, self.n_heads, self.d_head).transpose(0, 2, 1, 3)

    def __call__(
        self,
        x: jax.Array,
        source: jax.Array,
        bias: jax.Array,
        head_scale=None,
        *,
        position_bias: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Attend from `x` [batch, query, d_model] to `source` [batch, key, d_model].

        Args:
            x: normed query-side states.
            source: normed key/value-side states (`x` itself for self-attention).
            bias: [batch or 1, 1, query or 1, key] float32 mask bias (0 on visible keys,
                finfo.min on hidden ones).
            head_scale: [head] multipliers of each head's context before `o` (head masking);
                None keeps every head.
            position_bias: [1, head, query, key] float32 relative position bias (self-attention;
                cross-attention has none).

        Returns:
            output [batch, query, d_model] (after `o`); attentions [batch, head, query, key]
            (float32, post-softmax); attention_scores [batch, head, query, key] (float32, q·k
            plus the position bias, before the mask: T5 does not scale by 1/sqrt(d_head));
            queries [batch, head, query, d_head]; keys, values [batch, head, key, d_head].
        """
        q, k, v = self._heads(self.q(x)), self._heads(self.k(source)), self._heads(self.v(source))
        return self.attend_kv(q, k, v, bias, head_scale, position_bias=position_bias)

    def cached(
        self, x: jax.Array, bias: jax.Array, *, cache, positions, position_bias=None
    ) -> dict[str, jax.Array]:
        """Self-attend the new tokens [batch, new, d_model] over the cache (see kv_cache)."""
        return attend_cached(
            self._heads(self.q(x)),
            self._heads(self.k(x)),
            self._heads(self.v(x)),
            cache=cache,
            positions=positions,
            attend_kv=lambda q, k, v: self.attend_kv(q, k, v, bias, position_bias=position_bias),
        )

    def attend_kv(
        self, q, k, v, bias: jax.Array, head_scale=None, *, position_bias=None
    ) -> dict[str, jax.Array]:
        """Attend queries over keys and values [batch, head, ., d_head]; see `__call__`."""
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=self.precision)
        scores = scores.astype(jnp.float32)
        if position_bias is not None:
            scores = scores + position_bias
        probs = jax.nn.softmax(scores + bias, axis=-1)
        context = jnp.einsum("bhqk,bhkd->bhqd", probs.astype(v.dtype), v, precision=self.precision)
        if head_scale is not None:
            context = context * jnp.asarray(head_scale, context.dtype)[None, :, None, None]
        batch, _, n_query, _ = context.shape
        context = context.transpose(0, 2, 1, 3).reshape(batch, n_query, self.n_heads * self.d_head)
        return {
            "output": self.o(context),
            "attentions": probs,
            "attention_scores": scores,
            "queries": q,
            "keys": k,
            "values": v,
        }


class T5LayerSelfAttention(nnx.Module):
    """Pre-norm self-attention sub-layer with its residual add."""

    def __init__(self, config, dtype, rngs, *, has_relative_bias, bidirectional):
        self.SelfAttention = T5Attention(
            config, dtype, rngs, has_relative_bias=has_relative_bias, bidirectional=bidirectional
        )
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)

    def __call__(
        self,
        x: jax.Array,
        bias: jax.Array,
        head_scale=None,
        *,
        position_bias=None,
        cache=None,
        positions=None,
    ) -> dict[str, jax.Array]:
        """Return the attention probes with `output` = x + attention(norm(x)).

        `bias` is the mask bias and `position_bias` the relative position bias (first block's,
        shared). With a `cache` the new tokens at `positions` attend over it (see kv_cache); the
        probes then hold the updated `cache`.
        """
        normed = self.layer_norm(x)
        attention = self.SelfAttention
        if cache is None:
            probes = attention(normed, normed, bias, head_scale, position_bias=position_bias)
        else:
            probes = attention.cached(
                normed, bias, cache=cache, positions=positions, position_bias=position_bias
            )
        probes["output"] = x + probes["output"]
        return probes


class T5LayerCrossAttention(nnx.Module):
    """Pre-norm cross-attention sub-layer (decoder queries, encoder keys) with residual add."""

    def __init__(self, config, dtype, rngs):
        self.EncDecAttention = T5Attention(config, dtype, rngs)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)

    def __call__(
        self, x: jax.Array, encoded: jax.Array, bias: jax.Array, head_scale=None
    ) -> dict[str, jax.Array]:
        """Return the cross-attention probes with `output` = x + attention(norm(x), encoded)."""
        probes = self.EncDecAttention(self.layer_norm(x), encoded, bias, head_scale)
        probes["output"] = x + probes["output"]
        return probes


class T5DenseActDense(nnx.Module):
    """wo(act(wi x)): the v1.0 MLP."""

    def __init__(self, config, dtype, rngs):
        self.wi = linear(config.d_model, config.d_mlp, dtype, rngs, bias=False)
        self.wo = linear(config.d_mlp, config.d_model, dtype, rngs, bias=False)
        self.activation = config.activation

    def hidden(self, x: jax.Array) -> jax.Array:
        """Return the hidden activation act(wi x) [..., d_mlp]."""
        return ACTIVATION_FNS[self.activation](self.wi(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map [..., d_model] through d_mlp and back."""
        return self.wo(self.hidden(x))


class T5DenseGatedActDense(nnx.Module):
    """wo(act(wi_0 x) * wi_1 x): the gated MLP of T5 v1.1 / Flan-T5."""

    def __init__(self, config, dtype, rngs):
        self.wi_0 = linear(config.d_model, config.d_mlp, dtype, rngs, bias=False)
        self.wi_1 = linear(config.d_model, config.d_mlp, dtype, rngs, bias=False)
        self.wo = linear(config.d_mlp, config.d_model, dtype, rngs, bias=False)
        self.activation = config.activation

    def hidden(self, x: jax.Array) -> jax.Array:
        """Return the hidden activation act(wi_0 x) * wi_1 x [..., d_mlp]."""
        return ACTIVATION_FNS[self.activation](self.wi_0(x)) * self.wi_1(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map [..., d_model] through the gated d_mlp and back."""
        return self.wo(self.hidden(x))


class T5LayerFF(nnx.Module):
    """Pre-norm MLP sub-layer with its residual add."""

    def __init__(self, config, dtype, rngs):
        mlp = T5DenseGatedActDense if config.gated else T5DenseActDense
        self.DenseReluDense = mlp(config, dtype, rngs)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Return x + mlp(norm(x))."""
        return self.with_hidden(x)[0]

    def with_hidden(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Return (x + mlp(norm(x)), the MLP hidden activation [..., d_mlp])."""
        hidden = self.DenseReluDense.hidden(self.layer_norm(x))
        return x + self.DenseReluDense.wo(hidden), hidden


class T5Block(nnx.Module):
    """One block: `layer` = [self-attention, (cross-attention,) MLP]."""

    def __init__(self, config, dtype, rngs, *, first: bool, decoder: bool):
        layers = [
            T5LayerSelfAttention(
                config, dtype, rngs, has_relative_bias=first, bidirectional=not decoder
            )
        ]
        if decoder:
            layers.append(T5LayerCrossAttention(config, dtype, rngs))
        layers.append(T5LayerFF(config, dtype, rngs))
        self.layer = nnx.List(layers)
        self.decoder = decoder


class T5Stack(nnx.Module):
    """The encoder or decoder stack: `block[0..L-1]` and `final_layer_norm`."""

    def __init__(self, config: T5Config, dtype: str, rngs: nnx.Rngs, *, decoder: bool):
        n = config.n_decoder_layers if decoder else config.n_layers
        self.block = nnx.List(
            [T5Block(config, dtype, rngs, first=i == 0, decoder=decoder) for i in range(n)]
        )
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_eps, dtype)

    def self_biases(self, x: jax.Array, self_mask: jax.Array, cache, positions) -> tuple:
        """Return (relative position bias, mask bias) of self-attention, shared by all blocks.

        Without a cache: over x's tokens and `self_mask`; with one: the new tokens at
        `positions` over every cache slot.
        """
        first = self.block[0].layer[0].SelfAttention
        if cache is None:
            return first.position_bias(x.shape[1], x.shape[1]), self_mask
        n_slots = cache[0][0].shape[2]
        return first.position_bias_at(positions, n_slots), cache_bias(positions, n_slots)

    def __call__(
        self,
        x: jax.Array,
        self_mask: jax.Array,
        encoded: jax.Array | None = None,
        cross_mask: jax.Array | None = None,
        self_heads: jax.Array | None = None,
        cross_heads: jax.Array | None = None,
        *,
        cache=None,
        positions: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run every block on embedded tokens x [batch, token, d_model].

        Args:
            x: the embedded tokens.
            self_mask: [batch, 1, query, key] mask bias of self-attention.
            encoded: [batch, key, d_model] encoder output (decoder only).
            cross_mask: [batch, 1, 1, key] mask bias over encoder tokens (decoder only).
            self_heads, cross_heads: [layer, head] multipliers of each self-/cross-attention
                head's output (1 keeps, 0 removes); None keeps every head.
            cache: decoder key-value cache (see kv_cache): x holds the new tokens at
                `positions` [batch, new], `self_mask` is ignored, and the result also holds
                the updated `cache`; attentions then run over cache slots.

        Returns:
            hidden_states [batch, layer(L+1), token, d_model]: the embedding, then each block's
            output, the last one after `final_layer_norm` (as transformers reports it);
            attentions, attention_scores, queries, keys, values [batch, layer, head, token, ...];
            for the decoder also cross_attentions, cross_attention_scores [batch, layer, head,
            target, token] and cross_queries, cross_keys, cross_values; mlp_activations
            [batch, layer, token, d_mlp], the MLP hidden activation (gated: act(wi_0 x) * wi_1 x).
        """
        position, mask = self.self_biases(x, self_mask, cache, positions)
        ctx = {
            "mask": mask,
            "position": position,
            "positions": positions,
            "encoded": encoded,
            "cross_mask": cross_mask,
        }
        per_layer = {"self_heads": self_heads, "cross_heads": cross_heads}
        if cache is not None:
            per_layer["cache"] = jax.tree.map(lambda *a: jnp.stack(a), *cache)
        step = functools.partial(self.block_step, ctx=ctx)
        last, (hidden, probes) = scan_blocks(x, list(self.block), step, xs=per_layer)
        hidden, probes = layer_first(hidden), layer_first(probes)
        out = {"hidden_states": with_input(x, hidden).at[:, -1].set(self.final_layer_norm(last))}
        out["mlp_activations"] = probes["mlp_activations"]  # [batch, layer, token, d_mlp]
        if cache is not None:
            keys, values = probes["cache"]  # [batch, layer, kv_head, slot, d_head]
            out["cache"] = tuple((keys[:, i], values[:, i]) for i in range(keys.shape[1]))
        for name in ("attentions", "attention_scores", "queries", "keys", "values"):
            out[name] = probes[name]
            if f"cross_{name}" in probes:
                out[f"cross_{name}"] = probes[f"cross_{name}"]
        return out

    @staticmethod
    def block_step(block, x, per_layer, key, *, ctx):
        """Run one block: self-attention, cross-attention (decoder), MLP; return probes."""
        del key
        probes = block.layer[0](
            x,
            ctx["mask"],
            per_layer["self_heads"],
            position_bias=ctx["position"],
            cache=per_layer.get("cache"),
            positions=ctx["positions"],
        )
        x = probes.pop("output")
        if block.decoder:
            cross = block.layer[1](x, ctx["encoded"], ctx["cross_mask"], per_layer["cross_heads"])
            x = cross.pop("output")
            probes.update({f"cross_{name}": value for name, value in cross.items()})
        x, probes["mlp_activations"] = block.layer[-1].with_hidden(x)
        return x, (x, probes)


def padding_bias(mask: jax.Array) -> jax.Array:
    """Turn a [batch, key] 0/1 mask into a [batch, 1, 1, key] float32 additive bias."""
    visible = jnp.asarray(mask)[:, None, None, :] > 0
    return jnp.where(visible, 0.0, NEG).astype(jnp.float32)


def causal_bias(mask: jax.Array) -> jax.Array:
    """Return the [batch, 1, query, key] bias hiding future and padded decoder tokens."""
    n = mask.shape[1]
    causal = jnp.tril(jnp.ones((n, n), dtype=bool))[None, None]
    visible = causal & (jnp.asarray(mask)[:, None, None, :] > 0)
    return jnp.where(visible, 0.0, NEG).astype(jnp.float32)


class T5ForConditionalGeneration(nnx.Module):
    """T5 encoder-decoder with LM head (the checkpoint's T5ForConditionalGeneration)."""

    def __init__(
        self,
        config: T5Config,
        *,
        dtype: str = "float32",
        with_lm_head: bool = False,
        rngs: nnx.Rngs,
    ):
        """Build the model.

        Args:
            config: architecture settings.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            with_lm_head: whether the checkpoint has its own `lm_head` (untied); otherwise the
                logits use the transposed shared embedding.
            rngs: random streams for the (throw-away) initial parameters.
        """
        if dtype not in COMPUTE_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(COMPUTE_DTYPES)}")
        self.config = config
        self.precision = PRECISIONS[dtype]
        self.shared = nnx.Embed(
            config.vocab_size,
            config.d_model,
            dtype=COMPUTE_DTYPES[dtype],
            param_dtype=jnp.float32,
            rngs=rngs,
        )
        self.encoder = T5Stack(config, dtype, rngs, decoder=False)
        self.decoder = T5Stack(config, dtype, rngs, decoder=True)
        self.lm_head = (
            nnx.Linear(
                config.d_model,
                config.vocab_size,
                use_bias=False,
                dtype=COMPUTE_DTYPES[dtype],
                param_dtype=jnp.float32,
                precision=PRECISIONS[dtype],
                rngs=rngs,
            )
            if with_lm_head
            else None
        )

    def head_mask_rows(self) -> dict[str, slice]:
        """Rows of a head mask [row, head] that belong to each attention kind.

        One array masks all three kinds of heads: encoder self-attention (rows 0..L-1), decoder
        self-attention (the next Ld rows) and cross-attention (the last Ld rows).
        """
        encoder, decoder = self.config.n_layers, self.config.n_decoder_layers
        return {
            "encoder": slice(0, encoder),
            "decoder": slice(encoder, encoder + decoder),
            "cross": slice(encoder + decoder, encoder + 2 * decoder),
        }

    def encode(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        inputs_embeds: jax.Array | None = None,
        head_mask: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the encoder; same probe names as an encoder-only model.

        Args:
            input_ids: [batch, token] int ids.
            attention_mask: [batch, token] int, 1 for real tokens, 0 for padding.
            inputs_embeds: [batch, token, d_model] used instead of the `shared` lookup (so
                gradients can flow to the input embeddings).
            head_mask: [encoder layer, head] multipliers of each head's output.

        Returns:
            hidden_states [batch, layer(L+1), token, d_model]; attentions [batch, layer, head,
            query, key] (padded keys get exactly 0); queries, keys, values [batch, layer,
            head, token, d_head].
        """
        if inputs_embeds is None:
            x = self.shared(jnp.asarray(input_ids, jnp.int32))
        else:
            x = jnp.asarray(inputs_embeds).astype(self.shared.dtype)
        return self.encoder(x, padding_bias(attention_mask), self_heads=head_mask)

    def decode(
        self,
        decoder_input_ids: jax.Array,
        decoder_attention_mask: jax.Array,
        encoded: jax.Array,
        attention_mask: jax.Array,
        self_heads: jax.Array | None = None,
        *,
        cross_heads: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the decoder over encoder output `encoded` [batch, token, d_model].

        `self_heads`, `cross_heads`: [decoder layer, head] head-mask multipliers, or None.

        Returns:
            The decoder stack's probes (hidden_states, attentions, queries, keys, values and
            cross_*) plus logits [batch, target, vocab] (float32).
        """
        y = self.shared(jnp.asarray(decoder_input_ids, jnp.int32))
        out = self.decoder(
            y,
            causal_bias(decoder_attention_mask),
            encoded,
            padding_bias(attention_mask),
            self_heads,
            cross_heads,
        )
        out["logits"] = self.logits(out["hidden_states"][:, -1])
        return out

    def decode_step(
        self,
        decoder_input_ids: jax.Array,
        positions: jax.Array,
        cache: Cache,
        encoded: jax.Array,
        attention_mask: jax.Array,
    ) -> tuple[dict[str, jax.Array], Cache]:
        """Run new decoder tokens with a self-attention key-value cache (see kv_cache).

        Args:
            decoder_input_ids: [batch, new] decoder tokens fed this step.
            positions: [batch, new] their decoder positions (= cache slots).
            cache: per decoder layer (keys, values) [batch, head, slot, d_head].
            encoded: [batch, token, d_model] encoder output; attention_mask [batch, token].

        Returns:
            (outputs, updated cache): hidden_states [batch, layer(Ld+1), new, d_model],
            attentions [batch, layer, head, new, slot], cross_attentions [batch, layer, head,
            new, token], logits [batch, new, vocab] (float32).
        """
        y = self.shared(jnp.asarray(decoder_input_ids, jnp.int32))
        cross = padding_bias(attention_mask)
        out = self.decoder(y, None, encoded, cross, cache=cache, positions=positions)
        cache = out.pop("cache")
        out["logits"] = self.logits(out["hidden_states"][:, -1])
        return out, cache

    def logits(self, final: jax.Array) -> jax.Array:
        """Project the normed decoder output [batch, target, d_model] to [batch, target, vocab]."""
        if self.config.scale_decoder_outputs:
            final = final * (self.config.d_model**-0.5)
        if self.lm_head is not None:
            return self.lm_head(final).astype(jnp.float32)
        table = self.shared.embedding[...].astype(final.dtype)
        logits = jnp.einsum("btd,vd->btv", final, table, precision=self.precision)
        return logits.astype(jnp.float32)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        decoder_input_ids: jax.Array,
        decoder_attention_mask: jax.Array | None = None,
        inputs_embeds: jax.Array | None = None,
        head_mask: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run encoder and decoder (teacher forcing) and return every probe point.

        Args:
            input_ids, attention_mask: [batch, token] encoder inputs.
            decoder_input_ids: [batch, target] decoder inputs (targets shifted right, the
                decoder start token first).
            decoder_attention_mask: [batch, target], 1 for real tokens; all ones when None.
            inputs_embeds: [batch, token, d_model] encoder input embeddings instead of the
                `shared` lookup of `input_ids`.
            head_mask: [L + 2 Ld, head] multipliers of every head's output, rows as
                `head_mask_rows` says (encoder, decoder self, cross); None keeps every head.

        Returns:
            encoder_hidden_states [batch, layer(L+1), token, d_model]; encoder_attentions
            [batch, layer, head, token, token]; encoder_queries/keys/values [batch, layer,
            head, token, d_head]; decoder_hidden_states [batch, layer(Ld+1), target, d_model];
            decoder_attentions [batch, layer, head, target, target]; decoder_queries/keys/
            values [batch, layer, head, target, d_head]; cross_attentions [batch, layer, head,
            target, token]; cross_queries [batch, layer, head, target, d_head]; cross_keys/
            values [batch, layer, head, token, d_head]; logits [batch, target, vocab].
        """
        decoder_input_ids = jnp.asarray(decoder_input_ids, jnp.int32)
        if decoder_attention_mask is None:
            decoder_attention_mask = jnp.ones_like(decoder_input_ids)
        rows = self.head_mask_rows()
        part = (lambda kind: None) if head_mask is None else (lambda kind: head_mask[rows[kind]])
        enc = self.encode(input_ids, attention_mask, inputs_embeds, part("encoder"))
        dec = self.decode(
            decoder_input_ids,
            decoder_attention_mask,
            enc["hidden_states"][:, -1],
            attention_mask,
            part("decoder"),
            cross_heads=part("cross"),
        )
        out = {f"encoder_{name}": value for name, value in enc.items()}
        for name, value in dec.items():
            if name.startswith("cross_") or name == "logits":
                out[name] = value
            else:
                out[f"decoder_{name}"] = value
        return out


def greedy_decode(
    next_logits,
    batch: int,
    max_new_tokens: int,
    start_id: int,
    eos_id: int,
    *,
    pad_id: int,
) -> jax.Array:
    """Greedy decoding with a fixed-size buffer, jittable (a `lax.while_loop`).

    Each step reruns the decoder over the whole buffer (causal masking makes later buffer
    positions irrelevant), which is cheap at atlas sizes and needs no KV cache; the loop stops
    as soon as every row has produced `eos_id`, and finished rows are padded with `pad_id`
    (as `generate` does).

    Args:
        next_logits: function [batch, max_new_tokens] decoder ids -> [batch, max_new_tokens,
            vocab] logits (position t predicts token t + 1).
        batch: rows.
        max_new_tokens: tokens to generate at most.
        start_id, eos_id, pad_id: decoder start, end-of-sequence and padding ids.

    Returns:
        [batch, 1 + max_new_tokens] int32 ids: the start token, then the generated tokens.
    """
    ids = jnp.full((batch, max_new_tokens + 1), pad_id, jnp.int32).at[:, 0].set(start_id)
    done = jnp.zeros((batch,), bool)

    def keep_going(state):
        step, _, done = state
        return (step < max_new_tokens) & ~jnp.all(done)

    def step_once(state):
        step, ids, done = state
        logits = next_logits(ids[:, :max_new_tokens])  # [batch, new, vocab]
        scores = jax.lax.dynamic_index_in_dim(logits, step, axis=1, keepdims=False)
        token = jnp.where(done, pad_id, jnp.argmax(scores, axis=-1).astype(jnp.int32))
        ids = jax.lax.dynamic_update_slice_in_dim(ids, token[:, None], step + 1, axis=1)
        return step + 1, ids, done | (token == eos_id)

    _, ids, _ = jax.lax.while_loop(keep_going, step_once, (jnp.int32(0), ids, done))
    return ids


def generate_greedy(
    model: T5ForConditionalGeneration,
    input_ids: jax.Array,
    attention_mask: jax.Array,
    max_new_tokens: int,
) -> jax.Array:
    """Greedy-decode up to `max_new_tokens` tokens for each row; encoder runs once.

    Returns:
        [batch, 1 + max_new_tokens] int32: decoder start token, generated tokens, pad after eos.
    """
    config = model.config
    attention_mask = jnp.asarray(attention_mask)
    encoded = model.encode(input_ids, attention_mask)["hidden_states"][:, -1]

    def next_logits(decoder_ids):
        ones = jnp.ones_like(decoder_ids)
        return model.decode(decoder_ids, ones, encoded, attention_mask)["logits"]

    return greedy_decode(
        next_logits,
        input_ids.shape[0],
        max_new_tokens,
        config.decoder_start_token_id,
        config.eos_token_id,
        pad_id=config.pad_token_id,
    )
