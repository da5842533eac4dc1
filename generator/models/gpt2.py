"""GPT-2 decoder in Flax NNX, numerically matching `transformers`' GPT2Model / GPT2LMHeadModel.

Learned absolute positions, pre-LayerNorm blocks, fused `c_attn` query/key/value projection,
Conv1D weights stored [in, out] (so kernels load untransposed), `gelu_new` MLP, final `ln_f`,
causal attention, tied unembedding (`wte`) unless the checkpoint has its own `lm_head`.
The attribute tree mirrors the checkpoint names (`wte`, `wpe`, `h[i].attn.c_attn`, `ln_f`).

Axes: batch, token (= query / key positions), layer, head, d_model, d_head, d_mlp, vocab.
Hidden states follow transformers: index 0 is the embedding sum, index i < L the output of block
i, and index L the output of the last block after `ln_f` (what the unembedding reads).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.config import (
    ModelConfig,
    check_activation,
    head_width,
    label_names,
    require,
)
from generator.models.family import BUFFERS, Family, NameMap
from generator.models.heads import decoder_heads, decoder_outputs
from generator.models.kv_cache import Cache, attend_cached, cache_bias, run_cached
from generator.models.layers import (
    ACTIVATION_FNS,
    PRECISIONS,
    attend,
    check_dtype,
    embed,
    layer_norm,
    linear,
    mask_bias,
    merge_heads,
    pre_norm_block,
    split_heads,
)
from generator.models.stages import Staged


class GPT2Attention(nnx.Module):
    """Fused q/k/v projection `c_attn`, causal attention, output projection `c_proj`."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.n_heads, self.d_head = config.n_heads, config.d_head
        self.precision = PRECISIONS[dtype]
        self.c_attn = linear(config.d_model, 3 * config.d_model, dtype, rngs)
        self.c_proj = linear(config.d_model, config.d_model, dtype, rngs)

    def project(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Return queries, keys and values [batch, head, token, d_head] of [batch, token, d]."""
        q, k, v = jnp.split(self.c_attn(x), 3, axis=-1)
        return tuple(split_heads(t, self.n_heads, self.d_head) for t in (q, k, v))

    def __call__(
        self, x: jax.Array, bias: jax.Array, scale: jax.Array, head_scale=None
    ) -> dict[str, jax.Array]:
        """Return the block's attention output and its probes (see `BertSelfAttention`).

        `scale` is the layer's score multiplier (see `attention_scales`).
        """
        return self.attend_kv(*self.project(x), bias, scale, head_scale)

    def cached(self, x, bias, scale, *, cache, positions) -> dict[str, jax.Array]:
        """Attend the new tokens [batch, new, d_model] over the cache (see kv_cache)."""
        return attend_cached(
            *self.project(x),
            cache=cache,
            positions=positions,
            attend_kv=lambda q, k, v: self.attend_kv(q, k, v, bias, scale),
        )

    def attend_kv(self, q, k, v, bias: jax.Array, scale, head_scale=None) -> dict[str, jax.Array]:
        """Attend queries over keys and values; return the projected output and the probes."""
        context, probs, scores = attend(
            q, k, v, bias, scale, precision=self.precision, head_scale=head_scale
        )
        return {
            "context": self.c_proj(merge_heads(context)),
            "attentions": probs,
            "attention_scores": scores,
            "queries": q,
            "keys": k,
            "values": v,
        }


def attention_scales(config: ModelConfig) -> jax.Array:
    """Return [layer] float32 multipliers of each layer's raw attention scores.

    d_head ** -0.5 (or 1 without `scale_attn_weights`), divided by layer + 1 with
    `scale_attn_by_inverse_layer_idx`: data, not a module attribute, so that every block has
    the same structure and the layers compile as one scanned program.
    """
    scale = config.d_head**-0.5 if config.scale_attention else 1.0
    scales = [
        scale / (layer + 1) if config.scale_by_layer else scale for layer in range(config.n_layers)
    ]
    return jnp.asarray(np.asarray(scales, np.float32))


class GPT2MLP(nnx.Module):
    """c_fc -> activation -> c_proj."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.c_fc = linear(config.d_model, config.d_mlp, dtype, rngs)
        self.c_proj = linear(config.d_mlp, config.d_model, dtype, rngs)
        self.activation = config.activation

    def hidden(self, x: jax.Array) -> jax.Array:
        """Return the hidden activation act(c_fc(x)) [batch, token, d_mlp]."""
        return ACTIVATION_FNS[self.activation](self.c_fc(x))

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map [batch, token, d_model] through the MLP."""
        return self.c_proj(self.hidden(x))


class GPT2Block(nnx.Module):
    """Pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.ln_1 = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.attn = GPT2Attention(config, dtype, rngs)
        self.ln_2 = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.mlp = GPT2MLP(config, dtype, rngs)

    def __call__(
        self, x: jax.Array, bias: jax.Array, head_scale=None, *, scale, cache=None, positions=None
    ) -> dict[str, jax.Array]:
        """Return the attention probes with `context` = the block output.

        `scale` multiplies the raw attention scores (see `attention_scales`). With a `cache`
        (this layer's keys and values) the new tokens at `positions` [batch, new] attend over
        it, and the probes hold the updated `cache`.
        """
        if cache is None:
            attention = lambda h: self.attn(h, bias, scale, head_scale)  # noqa: E731
        else:
            attention = lambda h: self.attn.cached(  # noqa: E731
                h, bias, scale, cache=cache, positions=positions
            )
        return pre_norm_block(
            x,
            attention=attention,
            norms=(self.ln_1, self.ln_2),
            mlp_hidden=self.mlp.hidden,
            mlp_out=self.mlp.c_proj,
        )


class GPT2Decoder(Staged, nnx.Module):
    """GPT-2: `wte` + `wpe`, `h[0..L-1]`, `ln_f`, and an LM head or a `score` classifier."""

    def __init__(self, config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs):
        """Build the decoder.

        Args:
            config: architecture settings, including the heads to build.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            rngs: random streams for the (throw-away) initial parameters.
        """
        check_dtype(dtype)
        self.config = config
        self.wte = embed(config.vocab_size, config.d_model, dtype, rngs)
        self.wpe = embed(config.max_positions, config.d_model, dtype, rngs)
        self.h = nnx.List([GPT2Block(config, dtype, rngs) for _ in range(config.n_layers)])
        self.ln_f = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.lm_head, self.score = decoder_heads(config, dtype, rngs)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids=None,
        *,
        inputs_embeds: jax.Array | None = None,
        head_mask: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the decoder on right-padded inputs and return every probe point.

        Args:
            input_ids: [batch, token] int token ids.
            attention_mask: [batch, token] int, 1 for real tokens, 0 for (right) padding.
            token_type_ids: ignored (GPT-2 has no segments).
            inputs_embeds: [batch, token, d_model] used instead of the token-embedding lookup.
            head_mask: [layer, head] multipliers of each head's output (1 keeps, 0 removes).

        Returns:
            hidden_states [batch, layer(L+1), token, d_model]; attentions [batch, layer, head,
            query, key] (float32, zero above the diagonal and on padded keys); queries / keys /
            values [batch, layer, head, token, d_head]; mlp_activations [batch, layer, token,
            d_mlp] (after the non-linearity); logits [batch, token, vocab] (causal-lm)
            or [batch, n_labels] (classification, read at the last real token).
        """
        x, ctx = self.embed_stage(input_ids, attention_mask, inputs_embeds=inputs_embeds)
        return self.run_stages(x, ctx, head_mask)

    def blocks(self) -> list[nnx.Module]:
        """Return the block of each layer, in order."""
        return list(self.h)

    def embed_stage(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids=None,
        *,
        inputs_embeds: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Return the first block's input [batch, token, d_model] and every layer's context.

        The context holds `bias` [batch, 1, query, key] (causal and padding mask bias) and
        `attention_mask` [batch, token]; arguments as in `__call__`.
        """
        del token_type_ids
        input_ids = jnp.asarray(input_ids, jnp.int32)
        if input_ids.shape[1] > self.config.max_positions:
            raise ValueError(
                f"{input_ids.shape[1]} tokens exceed max_positions {self.config.max_positions}"
            )
        attention_mask = jnp.asarray(attention_mask)
        positions = jnp.arange(input_ids.shape[1])[None]
        words = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        ctx = {"bias": mask_bias(attention_mask, causal=True), "attention_mask": attention_mask}
        return words + self.wpe(positions), ctx

    def layer_inputs(self, ctx, head_mask: jax.Array | None):
        """Return the per-layer head mask rows and attention score multipliers."""
        del ctx
        return {"head_scale": head_mask, "scale": attention_scales(self.config)}

    def block_step(self, block, x, per_layer, key, *, ctx):
        """Run one block; return (its output, (its output, its probes))."""
        del key
        p = block(x, ctx["bias"], per_layer["head_scale"], scale=per_layer["scale"])
        x = p.pop("context")
        return x, (x, p)

    def output_stage(
        self, x: jax.Array, ctx, hidden: jax.Array, probes, positions=None
    ) -> dict[str, jax.Array]:
        """Return `__call__`'s outputs from the last block's output (see `BertEncoder`)."""
        table = self.wte.embedding[...]
        mask = ctx["attention_mask"]
        return decoder_outputs(
            hidden, probes, self.ln_f(x), self, table, attention_mask=mask, positions=positions
        )

    def decode_step(
        self, input_ids: jax.Array, positions: jax.Array, cache: Cache
    ) -> tuple[dict[str, jax.Array], Cache]:
        """Run new tokens through the decoder with a key-value cache (see kv_cache).

        Args:
            input_ids: [batch, new] the tokens fed this step (the prompt, then one per row).
            positions: [batch, new] their positions (learned position rows and cache slots).
            cache: per layer (keys, values) [batch, head, slot, d_head].

        Returns:
            (outputs, updated cache): hidden_states [batch, layer(L+1), new, d_model],
            attentions [batch, layer, head, new, slot], logits [batch, new, vocab].
        """
        positions = jnp.asarray(positions, jnp.int32)
        bias = cache_bias(positions, cache[0][0].shape[2])
        scales = attention_scales(self.config)
        blocks = [
            functools.partial(block, bias=bias, scale=scale, cache=pair, positions=positions)
            for block, scale, pair in zip(self.h, scales, cache, strict=True)
        ]
        x = self.wte(jnp.asarray(input_ids, jnp.int32)) + self.wpe(positions)
        x, hidden, probes, cache = run_cached(x, blocks)
        table = self.wte.embedding[...]
        return decoder_outputs(
            hidden, probes, self.ln_f(x), self, table, attention_mask=None
        ), cache


def parse_config(cfg: dict[str, Any]) -> ModelConfig:
    """Parse a GPT2Config dict."""
    d_model = int(require(cfg, "n_embd", "hidden_size"))
    n_heads = int(require(cfg, "n_head", "num_attention_heads"))
    if cfg.get("add_cross_attention"):
        raise ModelLoadError("GPT-2 with cross-attention is not supported; use a decoder-only one")
    pad = cfg.get("pad_token_id")
    return ModelConfig(
        family="gpt2",
        model_type="gpt2",
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=int(require(cfg, "n_layer", "num_hidden_layers")),
        n_heads=n_heads,
        d_head=head_width(d_model, n_heads, "n_embd"),
        d_mlp=int(cfg.get("n_inner") or 4 * d_model),
        max_positions=int(require(cfg, "n_positions", "max_position_embeddings")),
        layer_norm_eps=float(cfg.get("layer_norm_epsilon", 1e-5)),
        activation=check_activation(
            cfg.get("activation_function", "gelu_new"), "activation_function"
        ),
        pad_token_id=int(pad) if pad is not None else 0,
        causal=True,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        scale_attention=bool(cfg.get("scale_attn_weights", True)),
        scale_by_layer=bool(cfg.get("scale_attn_by_inverse_layer_idx", False)),
    )


def with_heads(config: ModelConfig, cfg: dict[str, Any], names: frozenset[str]) -> ModelConfig:
    """Return `config` with its head: a `score` classifier, else the (tied or own) LM head."""
    if "score.weight" in names:
        return dataclasses.replace(config, heads=("classification",), labels=label_names(cfg))
    if "lm_head.weight" in names or config.tie_word_embeddings:
        return dataclasses.replace(config, heads=("causal-lm",))
    return config


# Causal-mask buffers that older GPT-2 checkpoints store.
GPT2_BUFFERS = r"(^|\.)attn\.(bias|masked_bias)$"


def checkpoint_names(config: ModelConfig) -> NameMap:
    """Return the GPT-2 name map: Conv1D kernels untransposed, lm_head / score as Linear."""
    tied = (("lm_head.weight", "wte.weight"),) if config.tie_word_embeddings else ()
    return NameMap(
        prefixes=("transformer.",),
        renames=((r"^lm_head\.out\.", "lm_head."), (r"^score\.out\.", "score.")),
        untransposed=r"^h\.\d+\.(attn|mlp)\.c_",
        tied=tied,
        ignored=f"{BUFFERS}|{GPT2_BUFFERS}",
    )


def build(config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs) -> GPT2Decoder:
    """Build the GPT-2 decoder with the heads recorded in `config`."""
    return GPT2Decoder(config, dtype=dtype, rngs=rngs)


FAMILY = Family(
    name="gpt2",
    model_types=("gpt2",),
    parse=parse_config,
    with_heads=with_heads,
    build=build,
    names=checkpoint_names,
)
