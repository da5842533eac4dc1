"""XLNet in Flax NNX, numerically matching `transformers`' XLNetModel / XLNetLMHeadModel /
XLNetForSequenceClassification (attn_type "bi", no memory).

Inference runs the **content stream** as XLNetModel does with no `perm_mask`, no
`target_mapping` and no `mems`: every token sees every real token (itself included). The query
stream of pre-training (a `mask_emb` query that cannot see its own token) runs only for the
`permutation-lm` objective (`target_position`), as in the perm_mask + target_mapping recipe of
the transformers docs; it is never a probe.

Attention scores are Transformer-XL's relative ones, per head:
  (q_i + r_w_bias) · k_j               content term (the `queries` / `keys` probes are q, k)
  (q_i + r_r_bias) · (R(i - j) W_r)     position term: sinusoidal encoding of the distance i - j
  (q_i + r_s_bias) · seg_embed[s_ij]    segment term: s_ij = 1 when tokens i, j differ in segment
all scaled by d_head ** -0.5. Scores depend on positions only through i - j and on padding only
through hidden keys, so the outputs at real tokens are the same whether a batch is padded on the
left (XLNet's tokenizers) or on the right (what the pipeline does): tests/test_parity_families.py
checks both against unpadded PyTorch runs.

Segments: XLNet's tokenizer returns no `token_type_ids` by default, and XLNetModel given none
adds no segment term; so does this model (the pipeline passes none). Given token_type_ids
(`<cls>` has segment 2, a pair's second text 1), the segment term is added as in transformers.

The attribute tree follows the checkpoint (`word_embedding`, `layer[i].rel_attn.{q,k,v,o,r}`,
`layer[i].ff.layer_1`, `lm_loss`, `sequence_summary.summary`, `logits_proj`). The checkpoint's
[d_model, head, d_head] projections load as [d_model, head * d_head] kernels (`reshaped` in the
name map), so the weights pages read them like any other q/k/v/o matrix.

Axes: batch, token (= query / key positions), layer, head, d_model, d_head, d_mlp, vocab.
"""

from __future__ import annotations

import dataclasses
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
from generator.models.heads import ClassificationHead, at_positions, unembed
from generator.models.layers import (
    ACTIVATION_FNS,
    COMPUTE_DTYPES,
    MASKED,
    PRECISIONS,
    attend,
    check_dtype,
    embed,
    layer_norm,
    linear,
    merge_heads,
    ordered_probes,
    split_heads,
)
from generator.models.stages import Staged

STREAM_NOTE = (
    "XLNet runs here as XLNetModel does at inference: the content stream, with no permutation "
    "mask, no target mapping and no memory, so every token sees every real token, itself "
    "included. The query stream of pre-training (a query that cannot see its own token) is not "
    "shown; it runs only inside the permutation-lm objective of an XLNetLMHeadModel's "
    "attributions."
)


class Bias(nnx.Module):
    """One float32 bias-like parameter `bias` of `shape` (r_w_bias, lm_loss.bias, ...)."""

    def __init__(self, shape: tuple[int, ...]):
        self.bias = nnx.Param(jnp.zeros(shape, jnp.float32))


class Table(nnx.Module):
    """One float32 table parameter `embedding` [rows, width] (seg_embed, mask_emb)."""

    def __init__(self, rows: int, width: int):
        self.embedding = nnx.Param(jnp.zeros((rows, width), jnp.float32))


def sinusoid(distances: jax.Array, d_model: int) -> jax.Array:
    """Return XLNet's relative encodings [n, d_model]: sin then cos of distance * inv_freq."""
    inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, d_model, 2, dtype=jnp.float32) / d_model))
    angles = distances.astype(jnp.float32)[:, None] * inv_freq[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class XLNetRelativeAttention(nnx.Module):
    """q/k/v/o/r projections (no bias), the three score biases, seg_embed, post-LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        n, dh, d = config.n_heads, config.d_head, config.d_model
        self.n_heads, self.d_head = n, dh
        self.precision = PRECISIONS[dtype]
        self.compute = COMPUTE_DTYPES[dtype]
        for name in ("q", "k", "v", "r"):
            setattr(self, name, linear(d, n * dh, dtype, rngs, bias=False))
        self.o = linear(n * dh, d, dtype, rngs, bias=False)
        self.r_w_bias, self.r_r_bias, self.r_s_bias = (
            Bias((n * dh,)),
            Bias((n * dh,)),
            Bias((n * dh,)),
        )
        self.seg_embed = Table(2, n * dh)
        self.layer_norm = layer_norm(d, config.layer_norm_eps, dtype, rngs)

    def _per_head(self, param: nnx.Param) -> jax.Array:
        """Return a [head * d_head] parameter as [1, head, 1, d_head] in the compute dtype."""
        return param[...].astype(self.compute).reshape(1, self.n_heads, 1, self.d_head)

    def attend(self, q, k, v, *, k_r, query_pos, segments, visible, head_scale=None):
        """Relative attention of queries q [batch, head, query, d_head] over keys k, v.

        Args:
            k_r: [head, 2T, d_head] projected encodings of distances T, T-1, ..., 1-T.
            query_pos: [batch, query] int positions of the queries.
            segments: (query segments [batch, query], key segments [batch, key]), or None for
                no segment term (XLNetModel without token_type_ids).
            visible: [batch, query, key] bool.

        Returns:
            context [batch, head, query, d_head]; probs [batch, head, query, key] float32;
            scores [batch, head, query, key] float32 before the mask: the content, position and
            segment terms (q + r_w_bias)·k + (q + r_r_bias)·r + (q + r_s_bias)·s, scaled.
        """
        token = k.shape[2]
        position_scores = jnp.einsum(
            "bhqd,hpd->bhqp", q + self._per_head(self.r_r_bias.bias), k_r, precision=self.precision
        ).astype(jnp.float32)
        index = token - query_pos[:, :, None] + jnp.arange(token)[None, None, :]  # distance i - j
        position_scores = jnp.take_along_axis(position_scores, index[:, None], axis=-1)
        if segments is not None:
            position_scores = position_scores + self.segment_scores(q, segments)
        scale = self.d_head**-0.5
        bias = jnp.where(visible[:, None], 0.0, MASKED).astype(jnp.float32)
        return attend(
            q + self._per_head(self.r_w_bias.bias),
            k,
            v,
            bias,
            scale,
            precision=self.precision,
            head_scale=head_scale,
            position_bias=(position_scores * scale).astype(jnp.float32),
        )

    def segment_scores(self, q: jax.Array, segments: tuple[jax.Array, jax.Array]) -> jax.Array:
        """Return (q + r_s_bias) . seg_embed[same or different segment]: [batch, head, q, key]."""
        table = self.seg_embed.embedding[...].astype(self.compute)
        table = table.reshape(2, self.n_heads, self.d_head)
        scores = jnp.einsum(
            "bhqd,shd->bhqs",
            q + self._per_head(self.r_s_bias.bias),
            table,
            precision=self.precision,
        ).astype(jnp.float32)
        differ = (segments[0][:, :, None] != segments[1][:, None, :])[:, None]  # [b, 1, q, k]
        return jnp.where(differ, scores[..., 1:2], scores[..., 0:1])

    def heads(self, x: jax.Array, module: nnx.Linear) -> jax.Array:
        """Project [batch, token, d_model] with `module` into [batch, head, token, d_head]."""
        return split_heads(module(x), self.n_heads, self.d_head)

    def post_attention(self, x: jax.Array, context: jax.Array) -> jax.Array:
        """Output projection o, residual add, LayerNorm: [batch, token, d_model]."""
        return self.layer_norm(self.o(merge_heads(context)) + x)


class XLNetFeedForward(nnx.Module):
    """layer_1 -> activation -> layer_2, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.layer_norm = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.layer_1 = linear(config.d_model, config.d_mlp, dtype, rngs)
        self.layer_2 = linear(config.d_mlp, config.d_model, dtype, rngs)
        self.activation = config.activation

    def hidden(self, x: jax.Array) -> jax.Array:
        """Return act(layer_1(x)) [batch, token, d_mlp]."""
        return ACTIVATION_FNS[self.activation](self.layer_1(x))

    def output(self, hidden: jax.Array, x: jax.Array) -> jax.Array:
        """Return LayerNorm(layer_2(hidden) + x)."""
        return self.layer_norm(self.layer_2(hidden) + x)


class XLNetLayer(nnx.Module):
    """One block: relative attention (content stream, optionally the query stream), then FF."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.rel_attn = XLNetRelativeAttention(config, dtype, rngs)
        self.ff = XLNetFeedForward(config, dtype, rngs)

    def __call__(self, h, g, k_r, streams, head_scale=None) -> dict[str, jax.Array]:
        """Run the content stream h [batch, token, d_model] (and the query stream g, if any).

        streams: dict with `positions` [batch, token], `segments` [batch, token] or None, `visible_h`
        [batch, token, token] and, with g, `target` [batch, 1] and `visible_g` [batch, 1, token].
        """
        attn = self.rel_attn
        q, k, v = attn.heads(h, attn.q), attn.heads(h, attn.k), attn.heads(h, attn.v)
        segments = streams["segments"]
        context, probs, scores = attn.attend(
            q,
            k,
            v,
            k_r=k_r,
            query_pos=streams["positions"],
            segments=None if segments is None else (segments, segments),
            visible=streams["visible_h"],
            head_scale=head_scale,
        )
        attended = attn.post_attention(h, context)
        hidden = self.ff.hidden(attended)
        probes = {
            "attentions": probs,
            "attention_scores": scores,
            "queries": q,
            "keys": k,
            "values": v,
            "mlp_activations": hidden,
            "context": self.ff.output(hidden, attended),
        }
        if g is not None:
            target = streams["target"]
            pair = None
            if segments is not None:
                pair = (jnp.take_along_axis(segments, target, axis=1), segments)
            context_g, _, _ = attn.attend(
                attn.heads(g, attn.q),
                k,
                v,
                k_r=k_r,
                query_pos=target,
                segments=pair,
                visible=streams["visible_g"],
                head_scale=head_scale,
            )
            attended_g = attn.post_attention(g, context_g)
            probes["query_stream"] = self.ff.output(self.ff.hidden(attended_g), attended_g)
        return probes


class XLNetLMHead(nnx.Module):
    """lm_loss: unembedding tied to `word_embedding` (or its own `decoder`) plus `bias`."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.bias = nnx.Param(jnp.zeros((config.vocab_size,), jnp.float32))
        self.decoder = (
            None
            if config.tie_word_embeddings
            else linear(config.d_model, config.vocab_size, dtype, rngs, bias=False)
        )
        self.dtype = dtype

    def __call__(self, x: jax.Array, embedding: jax.Array) -> jax.Array:
        """Return [batch, token, vocab] logits."""
        logits = unembed(x, embedding, self.dtype) if self.decoder is None else self.decoder(x)
        return logits + self.bias[...].astype(logits.dtype)


class XLNetEncoder(Staged, nnx.Module):
    """XLNet: `word_embedding`, `mask_emb`, `layer[0..L-1]`, and `lm_loss` or a classifier."""

    def __init__(self, config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs):
        """Build the model.

        Args:
            config: architecture settings, including the heads to build.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            rngs: random streams for the (throw-away) initial parameters.
        """
        check_dtype(dtype)
        self.config = config
        self.dtype = dtype
        self.word_embedding = embed(config.vocab_size, config.d_model, dtype, rngs)
        self.mask_emb = Table(1, config.d_model)
        self.layer = nnx.List([XLNetLayer(config, dtype, rngs) for _ in range(config.n_layers)])
        heads = set(config.heads)
        self.lm_loss = XLNetLMHead(config, dtype, rngs) if "permutation-lm" in heads else None
        self.classifier = (
            ClassificationHead(config.d_model, len(config.labels), "last", "tanh", dtype, rngs)
            if "classification" in heads
            else None
        )

    def relative_keys(self, token: int) -> jax.Array:
        """Return the sinusoidal encodings of distances token, ..., 1 - token: [2 token, d]."""
        distances = jnp.arange(token, -token, -1)
        if self.config.clamp_len > 0:
            distances = jnp.clip(distances, -self.config.clamp_len, self.config.clamp_len)
        return sinusoid(distances, self.config.d_model).astype(COMPUTE_DTYPES[self.dtype])

    def streams(
        self, real: jax.Array, token_type_ids: jax.Array | None, target_position: jax.Array | None
    ) -> tuple[dict, jax.Array | None]:
        """Return what each layer needs besides its input, and the query stream's input g.

        `real` is the [batch, token] mask of real tokens. The dict holds `positions`,
        `segments` (None without token_type_ids), `visible_h` [batch, query, key] (and, with a
        `target_position`, `visible_g` and `target`); g is None without `target_position`.
        """
        batch, token = real.shape
        segments = None if token_type_ids is None else jnp.asarray(token_type_ids, jnp.int32)
        positions = jnp.broadcast_to(jnp.arange(token)[None], (batch, token))
        streams = {"positions": positions, "segments": segments}
        keys = jnp.broadcast_to(real[:, None, :], (batch, token, token))
        if target_position is None:
            streams["visible_h"] = keys
            return streams, None
        target = jnp.asarray(target_position, jnp.int32).reshape(batch, 1)
        is_target = positions == target  # [batch, token]
        own = jnp.eye(token, dtype=bool)[None]
        streams["visible_h"] = keys & (~is_target[:, None, :] | own)
        streams["visible_g"] = real[:, None, :] & ~is_target[:, None, :]
        streams["target"] = target
        g = jnp.broadcast_to(
            self.mask_emb.embedding[...].astype(COMPUTE_DTYPES[self.dtype])[None],
            (batch, 1, self.config.d_model),
        )
        return streams, g

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        head_mask: jax.Array | None = None,
        target_position: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the content stream and return every probe point.

        Args:
            input_ids: [batch, token] int token ids.
            attention_mask: [batch, token] int, 1 for real tokens, 0 for padding (either side).
            token_type_ids: [batch, token] segment ids; None (what XLNet's tokenizer gives by
                default, and what the pipeline passes): no segment term, as in XLNetModel.
            inputs_embeds: [batch, token, d_model] used instead of the word-embedding lookup.
            head_mask: [layer, head] multipliers of each head's output (1 keeps, 0 removes).
            target_position: [batch] int, one position per text to predict with the query
                stream (permutation-lm): no token sees the target's own token except the
                target's content stream; `target_logits` [batch, vocab] is its prediction.

        Returns:
            hidden_states [batch, layer(L+1), token, d_model] (index 0: the word embeddings);
            attentions [batch, layer, head, query, key] (content stream, float32, hidden keys
            exactly 0); queries / keys / values [batch, layer, head, token, d_head] (the content
            projections, before the score biases); mlp_activations [batch, layer, token, d_mlp];
            logits [batch, token, vocab] (permutation-lm) or [batch, label] (classification, on
            the last real token, `<cls>`); target_logits [batch, vocab] with target_position.
        """
        x, ctx = self.embed_stage(
            input_ids,
            attention_mask,
            token_type_ids,
            inputs_embeds=inputs_embeds,
            target_position=target_position,
        )
        return self.run_stages(x, ctx, head_mask)

    def blocks(self) -> list[nnx.Module]:
        """Return the block of each layer, in order."""
        return list(self.layer)

    def embed_stage(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        target_position: jax.Array | None = None,
    ) -> tuple:
        """Return the first block's input and every layer's context.

        The input is the content stream [batch, token, d_model], or with a `target_position`
        the pair (content stream, query stream [batch, 1, d_model]). The context holds
        `streams` (see `streams`), `k_r` [2 token, d_model] the relative position encodings
        and `attention_mask` [batch, token]; arguments as in `__call__`.
        """
        input_ids = jnp.asarray(input_ids, jnp.int32)
        attention_mask = jnp.asarray(attention_mask)
        streams, g = self.streams(attention_mask > 0, token_type_ids, target_position)
        x = self.word_embedding(input_ids) if inputs_embeds is None else inputs_embeds
        ctx = {
            "streams": streams,
            "k_r": self.relative_keys(input_ids.shape[1]),
            "attention_mask": attention_mask,
        }
        return (x, g) if g is not None else x, ctx

    def block_step(self, block, x, per_layer, key, *, ctx):
        """Run one block on the content stream (and the query stream, if x is a pair)."""
        del key
        h, g = x if isinstance(x, tuple) else (x, None)
        rel, k_r = block.rel_attn, ctx["k_r"]
        k_r = rel.r(k_r).reshape(k_r.shape[0], rel.n_heads, rel.d_head).transpose(1, 0, 2)
        p = block(h, g, k_r, ctx["streams"], per_layer["head_scale"])
        h = p.pop("context")
        g = p.pop("query_stream", None)
        return (h, g) if g is not None else h, (h, p)

    def output_stage(
        self, x, ctx, hidden: jax.Array, probes, positions=None
    ) -> dict[str, jax.Array]:
        """Return `__call__`'s outputs from the last block's output (see `BertEncoder`)."""
        h, g = x if isinstance(x, tuple) else (x, None)
        out = {"hidden_states": hidden, **ordered_probes(probes)}
        table = self.word_embedding.embedding[...]
        if self.lm_loss is not None:
            out["logits"] = self.lm_loss(at_positions(h, positions), table)
            if g is not None:
                out["target_logits"] = self.lm_loss(g, table)[:, 0]
        elif self.classifier is not None:
            out["logits"] = self.classifier(h, ctx["attention_mask"], None)
        return out


# --- config parsing -----------------------------------------------------------------------------


def parse_config(cfg: dict[str, Any]) -> ModelConfig:
    """Parse an XLNetConfig dict (attn_type "bi", no bi_data)."""
    d_model = int(require(cfg, "d_model"))
    n_heads = int(require(cfg, "n_head"))
    attn_type = cfg.get("attn_type", "bi")
    if attn_type != "bi":
        raise ModelLoadError(f"XLNet attn_type {attn_type!r} is not supported; only 'bi' is")
    if cfg.get("bi_data"):
        raise ModelLoadError("XLNet with bi_data is not supported (a pre-training setting)")
    d_head = head_width(d_model, n_heads, "d_model")
    if cfg.get("d_head") is not None and int(cfg["d_head"]) != d_head:
        raise ModelLoadError(f"d_head {cfg['d_head']} is not d_model / n_head = {d_head}")
    pad = cfg.get("pad_token_id")
    return ModelConfig(
        family="xlnet",
        model_type="xlnet",
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=int(require(cfg, "n_layer")),
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=int(require(cfg, "d_inner")),
        max_positions=None,  # relative positions: no limit
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        activation=check_activation(cfg.get("ff_activation", "gelu"), "ff_activation"),
        pad_token_id=int(pad) if pad is not None else 5,
        attention_bias=False,
        output_bias=False,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        clamp_len=int(cfg.get("clamp_len") if cfg.get("clamp_len") is not None else -1),
        cls_last=True,
        attention_note=STREAM_NOTE,
    )


def _check_summary(cfg: dict[str, Any]) -> None:
    """Refuse sequence-summary settings other than XLNet's default (last, proj, tanh)."""
    settings = (
        ("summary_type", cfg.get("summary_type", "last"), "last"),
        ("summary_use_proj", cfg.get("summary_use_proj", True), True),
        ("summary_activation", cfg.get("summary_activation", "tanh"), "tanh"),
        ("summary_proj_to_labels", bool(cfg.get("summary_proj_to_labels", False)), False),
    )
    for key, value, supported in settings:
        if value != supported:
            raise ModelLoadError(f"XLNet {key} {value!r} is not supported; only {supported!r} is")


def with_heads(config: ModelConfig, cfg: dict[str, Any], names: frozenset[str]) -> ModelConfig:
    """Return `config` with its head: `sequence_summary` + `logits_proj`, else `lm_loss`."""
    if "logits_proj.weight" in names:
        _check_summary(cfg)
        return dataclasses.replace(config, heads=("classification",), labels=label_names(cfg))
    if "lm_loss.bias" in names:
        return dataclasses.replace(config, heads=("permutation-lm",))
    return config


_ATTN = r"^layer\.(\d+)\.rel_attn\."


def checkpoint_names(config: ModelConfig) -> NameMap:
    """Return the XLNet name map: per-head [d_model, head, d_head] tensors reshaped."""
    tied = (("lm_loss.weight", "word_embedding.weight"),) if config.tie_word_embeddings else ()
    return NameMap(
        prefixes=("transformer.",),
        renames=(
            (_ATTN + r"(q|k|v|o|r)\.weight$", r"layer.\1.rel_attn.\2"),
            (_ATTN + r"(r_w_bias|r_r_bias|r_s_bias)\.bias$", r"layer.\1.rel_attn.\2"),
            (_ATTN + r"seg_embed\.weight$", r"layer.\1.rel_attn.seg_embed"),
            (r"^mask_emb\.weight$", "mask_emb"),
            (r"^lm_loss\.decoder\.weight$", "lm_loss.weight"),
            (r"^classifier\.dense\.", "sequence_summary.summary."),
            (r"^classifier\.out\.", "logits_proj."),
        ),
        untransposed=r"^layer\.\d+\.rel_attn\.(q|k|v|r)$",
        tied=tied,
        reshaped=r"^(layer\.\d+\.rel_attn\.(q|k|v|o|r|r_w_bias|r_r_bias|r_s_bias|seg_embed)|mask_emb)$",
    )


def build(config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs) -> XLNetEncoder:
    """Build XLNet with the heads recorded in `config`."""
    return XLNetEncoder(config, dtype=dtype, rngs=rngs)


FAMILY = Family(
    name="xlnet",
    model_types=("xlnet",),
    parse=parse_config,
    with_heads=with_heads,
    build=build,
    names=checkpoint_names,
)
