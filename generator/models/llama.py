"""Llama-like decoders in Flax NNX: Llama, SmolLM (model_type llama), Mistral, Qwen2.

Pre-RMSNorm blocks, rotary positions (with the `rope_parameters` scaling variants of
`generator.models.rope`), grouped-query / multi-query attention, SwiGLU MLP, optional q/k/v bias
(Qwen2), tied or untied unembedding, and sliding-window attention where the config asks for it
(Mistral `sliding_window` on every layer; Qwen2 `use_sliding_window` on the layers from
`max_window_layers`, or as `layer_types` says). The attribute tree mirrors the checkpoint names
(`embed_tokens`, `layers[i].self_attn.q_proj`, `norm`, `lm_head`).

Axes: batch, token (= query / key positions), layer, head (query heads), d_model, d_head, vocab.
Attention, queries, keys and values are reported per query head: with grouped-query attention
each key/value head is repeated for its n_heads / n_kv_heads consecutive query heads. Queries and
keys are after the rotation (what the dot product sees), before scaling. Hidden states follow
transformers: index L is the last block's output after the final `norm`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.config import (
    ModelConfig,
    check_activation,
    head_width,
    label_names,
    require,
)
from generator.models.family import Family, NameMap
from generator.models.heads import decoder_heads, decoder_outputs
from generator.models.kv_cache import Cache, attend_cached, cache_bias, run_cached
from generator.models.layers import (
    ACTIVATION_FNS,
    COMPUTE_DTYPES,
    PRECISIONS,
    RMSNorm,
    attend,
    check_dtype,
    embed,
    linear,
    mask_bias,
    merge_heads,
    pre_norm_block,
    split_heads,
)
from generator.models.rope import apply_rotary, parse_rope, rotary_tables
from generator.models.stages import Staged

MODEL_TYPES = ("llama", "mistral", "qwen2")


class LlamaAttention(nnx.Module):
    """q/k/v/o projections, rotary positions, grouped-query attention."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.n_heads, self.n_kv_heads, self.d_head = (
            config.n_heads,
            config.n_kv_heads,
            config.d_head,
        )
        self.precision = PRECISIONS[dtype]
        d, q_width, kv_width = (
            config.d_model,
            config.n_heads * config.d_head,
            config.n_kv_heads * config.d_head,
        )
        self.q_proj = linear(d, q_width, dtype, rngs, bias=config.attention_bias)
        self.k_proj = linear(d, kv_width, dtype, rngs, bias=config.attention_bias)
        self.v_proj = linear(d, kv_width, dtype, rngs, bias=config.attention_bias)
        self.o_proj = linear(q_width, d, dtype, rngs, bias=config.output_bias)

    def project(self, x: jax.Array, cos: jax.Array, sin: jax.Array):
        """Return rotated queries [batch, head, token, d_head], rotated keys and values
        [batch, kv_head, token, d_head] of [batch, token, d_model]."""
        q = apply_rotary(split_heads(self.q_proj(x), self.n_heads, self.d_head), cos, sin)
        k = apply_rotary(split_heads(self.k_proj(x), self.n_kv_heads, self.d_head), cos, sin)
        v = split_heads(self.v_proj(x), self.n_kv_heads, self.d_head)
        return q, k, v

    def attend_kv(self, q, k, v, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Attend queries over keys/values [batch, kv_head, key, d_head]; return output and probes."""
        group = self.n_heads // self.n_kv_heads
        k, v = jnp.repeat(k, group, axis=1), jnp.repeat(v, group, axis=1)  # [batch, head, ...]
        context, probs, scores = attend(
            q, k, v, bias, self.d_head**-0.5, precision=self.precision, head_scale=head_scale
        )
        return {
            "context": self.o_proj(merge_heads(context)),
            "attentions": probs,
            "attention_scores": scores,
            "queries": q,
            "keys": k,
            "values": v,
        }

    def __call__(
        self, x: jax.Array, bias: jax.Array, cos: jax.Array, sin: jax.Array, head_scale=None
    ) -> dict[str, jax.Array]:
        """Attend over [batch, token, d_model]; return the output and per-query-head probes."""
        return self.attend_kv(*self.project(x, cos, sin), bias, head_scale)

    def cached(self, x, bias, cos, sin, *, cache, positions) -> dict[str, jax.Array]:
        """Attend the new tokens [batch, new, d_model] over the cache (see kv_cache)."""
        return attend_cached(
            *self.project(x, cos, sin),
            cache=cache,
            positions=positions,
            attend_kv=lambda q, k, v: self.attend_kv(q, k, v, bias),
        )


class LlamaMLP(nnx.Module):
    """SwiGLU: down_proj(act(gate_proj(x)) * up_proj(x))."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        d, h = config.d_model, config.d_mlp
        self.gate_proj = linear(d, h, dtype, rngs, bias=config.mlp_bias)
        self.up_proj = linear(d, h, dtype, rngs, bias=config.mlp_bias)
        self.down_proj = linear(h, d, dtype, rngs, bias=config.mlp_bias)
        self.activation = config.activation

    def hidden(self, x: jax.Array) -> jax.Array:
        """Return the hidden activation act(gate_proj(x)) * up_proj(x) [batch, token, d_mlp]."""
        return ACTIVATION_FNS[self.activation](self.gate_proj(x)) * self.up_proj(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Map [batch, token, d_model] through the gated MLP."""
        return self.down_proj(self.hidden(x))


class LlamaDecoderLayer(nnx.Module):
    """Pre-RMSNorm block: x + attn(norm(x)), then + mlp(norm(.))."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.input_layernorm = RMSNorm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.self_attn = LlamaAttention(config, dtype, rngs)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.mlp = LlamaMLP(config, dtype, rngs)

    def __call__(
        self, x, bias, cos, sin, head_scale=None, *, cache=None, positions=None
    ) -> dict[str, jax.Array]:
        """Return the attention probes with `context` = the block output.

        With a `cache` (this layer's keys and values) the new tokens at `positions` [batch, new]
        attend over it, and the probes hold the updated `cache`.
        """
        if cache is None:
            attention = lambda h: self.self_attn(h, bias, cos, sin, head_scale)  # noqa: E731
        else:
            attention = lambda h: self.self_attn.cached(  # noqa: E731
                h, bias, cos, sin, cache=cache, positions=positions
            )
        return pre_norm_block(  # mlp_activations: act(gate) * up
            x,
            attention=attention,
            norms=(self.input_layernorm, self.post_attention_layernorm),
            mlp_hidden=self.mlp.hidden,
            mlp_out=self.mlp.down_proj,
        )


class LlamaDecoder(Staged, nnx.Module):
    """`embed_tokens`, `layers[0..L-1]`, `norm`, and an LM head or a `score` classifier."""

    def __init__(self, config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs):
        """Build the decoder.

        Args:
            config: architecture settings, including the heads to build.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            rngs: random streams for the (throw-away) initial parameters.
        """
        check_dtype(dtype)
        self.config = config
        self.dtype = dtype
        self.embed_tokens = embed(config.vocab_size, config.d_model, dtype, rngs)
        self.layers = nnx.List(
            [LlamaDecoderLayer(config, dtype, rngs) for _ in range(config.n_layers)]
        )
        self.norm = RMSNorm(config.d_model, config.layer_norm_eps, dtype, rngs)
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
            token_type_ids: ignored.
            inputs_embeds: [batch, token, d_model] used instead of the token-embedding lookup.
            head_mask: [layer, head] multipliers of each head's output (1 keeps, 0 removes).

        Returns:
            hidden_states [batch, layer(L+1), token, d_model]; attentions [batch, layer, head,
            query, key] (float32; zero above the diagonal, outside a sliding window and on
            padded keys); queries / keys / values [batch, layer, head, token, d_head];
            mlp_activations [batch, layer, token, d_mlp] (SwiGLU: act(gate_proj) * up_proj);
            logits [batch, token, vocab] (causal-lm) or [batch, n_labels] (classification,
            read at the last real token).
        """
        x, ctx = self.embed_stage(input_ids, attention_mask, inputs_embeds=inputs_embeds)
        return self.run_stages(x, ctx, head_mask)

    def blocks(self) -> list[nnx.Module]:
        """Return the block of each layer, in order."""
        return list(self.layers)

    def windows(self) -> tuple[int | None, ...]:
        """Return each layer's sliding window (None: full attention)."""
        return self.config.sliding_windows or (None,) * self.config.n_layers

    def layer_keys(self) -> list[int]:
        """Return each layer's index into the distinct windows: layers of one window share runs."""
        distinct = list(dict.fromkeys(self.windows()))
        return [distinct.index(window) for window in self.windows()]

    def embed_stage(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids=None,
        *,
        inputs_embeds: jax.Array | None = None,
    ) -> tuple[jax.Array, dict]:
        """Return the first block's input [batch, token, d_model] and every layer's context.

        The context holds `biases` (one [batch, 1, query, key] mask bias per distinct window,
        in the order of `layer_keys`), the rotary tables `cos`, `sin` [token, d_head] and
        `attention_mask` [batch, token]; arguments as in `__call__`.
        """
        del token_type_ids
        input_ids = jnp.asarray(input_ids, jnp.int32)
        token = input_ids.shape[1]
        if token > self.config.max_positions:
            raise ValueError(f"{token} tokens exceed max_positions {self.config.max_positions}")
        attention_mask = jnp.asarray(attention_mask)
        distinct = dict.fromkeys(self.windows())
        biases = tuple(mask_bias(attention_mask, causal=True, window=w) for w in distinct)
        cos, sin = rotary_tables(self.config.rope, token, COMPUTE_DTYPES[self.dtype])
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        return x, {"biases": biases, "cos": cos, "sin": sin, "attention_mask": attention_mask}

    def block_step(self, block, x, per_layer, key, *, ctx):
        """Run one block (`key`: its window's index); return (output, (output, probes))."""
        bias = ctx["biases"][key]
        p = block(x, bias, ctx["cos"], ctx["sin"], per_layer["head_scale"])
        x = p.pop("context")
        return x, (x, p)

    def output_stage(
        self, x: jax.Array, ctx, hidden: jax.Array, probes, positions=None
    ) -> dict[str, jax.Array]:
        """Return `__call__`'s outputs from the last block's output (see `BertEncoder`)."""
        table = self.embed_tokens.embedding[...]
        mask = ctx["attention_mask"]
        return decoder_outputs(
            hidden, probes, self.norm(x), self, table, attention_mask=mask, positions=positions
        )

    def decode_step(
        self, input_ids: jax.Array, positions: jax.Array, cache: Cache
    ) -> tuple[dict[str, jax.Array], Cache]:
        """Run new tokens through the decoder with a key-value cache (see kv_cache).

        Args:
            input_ids: [batch, new] the tokens fed this step (the prompt, then one per row).
            positions: [batch, new] their positions, which are also their cache slots.
            cache: per layer (keys, values) [batch, kv_head, slot, d_head].

        Returns:
            (outputs, updated cache): hidden_states [batch, layer(L+1), new, d_model],
            attentions [batch, layer, head, new, slot], logits [batch, new, vocab].
        """
        config = self.config
        positions = jnp.asarray(positions, jnp.int32)
        n_slots = cache[0][0].shape[2]
        windows = config.sliding_windows or (None,) * config.n_layers
        biases = {w: cache_bias(positions, n_slots, w) for w in set(windows)}
        cos, sin = rotary_tables(config.rope, n_slots, COMPUTE_DTYPES[self.dtype])
        blocks = [
            functools.partial(
                layer,
                bias=biases[window],
                cos=cos[positions],
                sin=sin[positions],
                cache=pair,
                positions=positions,
            )
            for layer, window, pair in zip(self.layers, windows, cache, strict=True)
        ]
        x = self.embed_tokens(jnp.asarray(input_ids, jnp.int32))
        x, hidden, probes, cache = run_cached(x, blocks)
        table = self.embed_tokens.embedding[...]
        return decoder_outputs(
            hidden, probes, self.norm(x), self, table, attention_mask=None
        ), cache


# --- config parsing -----------------------------------------------------------------------------


def sliding_windows(cfg: dict[str, Any], n_layers: int) -> tuple[int | None, ...]:
    """Return the per-layer sliding window that transformers would apply (empty: none)."""
    model_type = cfg["model_type"]
    window = cfg.get("sliding_window")
    if model_type == "mistral":
        return (int(window),) * n_layers if window else ()
    if model_type != "qwen2" or not cfg.get("use_sliding_window") or not window:
        return ()
    layer_types = cfg.get("layer_types") or [
        "sliding_attention" if i >= int(cfg.get("max_window_layers", 28)) else "full_attention"
        for i in range(n_layers)
    ]
    if len(layer_types) != n_layers:
        raise ModelLoadError(f"layer_types lists {len(layer_types)} layers, not {n_layers}")
    windows = tuple(int(window) if t == "sliding_attention" else None for t in layer_types)
    return windows if any(windows) else ()


def parse_config(cfg: dict[str, Any]) -> ModelConfig:
    """Parse a LlamaConfig, MistralConfig or Qwen2Config dict."""
    model_type = cfg["model_type"]
    d_model = int(require(cfg, "hidden_size"))
    n_heads = int(require(cfg, "num_attention_heads"))
    d_head = int(cfg.get("head_dim") or head_width(d_model, n_heads))
    n_kv_heads = int(cfg.get("num_key_value_heads") or n_heads)
    if n_heads % n_kv_heads:
        raise ModelLoadError(
            f"num_attention_heads {n_heads} is not a multiple of num_key_value_heads {n_kv_heads}"
        )
    n_layers = int(require(cfg, "num_hidden_layers"))
    max_positions = int(cfg.get("max_position_embeddings", 2048))
    rope = parse_rope(cfg, d_head, max_positions)
    if rope.rope_type == "dynamic":  # dynamic NTK exists to run past the trained length
        max_positions = int(max_positions * rope.factor)
    # Only Llama reads attention_bias / mlp_bias; Qwen2 always has q/k/v (not o) biases.
    llama, qwen2 = model_type == "llama", model_type == "qwen2"
    attention_bias = qwen2 or (llama and bool(cfg.get("attention_bias", False)))
    pad = cfg.get("pad_token_id")
    return ModelConfig(
        family="llama",
        model_type=model_type,
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=int(require(cfg, "intermediate_size")),
        max_positions=max_positions,
        layer_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        activation=check_activation(cfg.get("hidden_act", "silu")),
        pad_token_id=int(pad) if pad is not None else 0,
        n_kv_heads=n_kv_heads,
        causal=True,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        rope=rope,
        sliding_windows=sliding_windows(cfg, n_layers),
        attention_bias=attention_bias,
        output_bias=False if qwen2 else attention_bias,
        mlp_bias=llama and bool(cfg.get("mlp_bias", False)),
    )


def with_heads(config: ModelConfig, cfg: dict[str, Any], names: frozenset[str]) -> ModelConfig:
    """Return `config` with its head: a `score` classifier, else the (tied or own) LM head."""
    if "score.weight" in names:
        return dataclasses.replace(config, heads=("classification",), labels=label_names(cfg))
    if "lm_head.weight" in names or config.tie_word_embeddings:
        return dataclasses.replace(config, heads=("causal-lm",))
    return config


def checkpoint_names(config: ModelConfig) -> NameMap:
    """Return the Llama-like name map (`model.` prefix; lm_head / score as Linear)."""
    tied = (("lm_head.weight", "embed_tokens.weight"),) if config.tie_word_embeddings else ()
    return NameMap(
        prefixes=("model.",),
        renames=((r"^lm_head\.out\.", "lm_head."), (r"^score\.out\.", "score.")),
        tied=tied,
    )


def build(config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs) -> LlamaDecoder:
    """Build the decoder with the heads recorded in `config`."""
    return LlamaDecoder(config, dtype=dtype, rngs=rngs)


FAMILY = Family(
    name="llama",
    model_types=MODEL_TYPES,
    parse=parse_config,
    with_heads=with_heads,
    build=build,
    names=checkpoint_names,
)
