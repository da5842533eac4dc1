"""BERT-family encoder in Flax NNX, with named probe points, numerically matching `transformers`.

The attribute tree mirrors the Hugging Face checkpoint names (`embeddings.word_embeddings`,
`encoder.layer[i].attention.self.query`, `pooler.dense`, ...), so loading is a name mapping.

Axes: batch, token (= query / key positions), layer, head, d_model, d_head, d_mlp.
Inference only: no dropout. Parameters are float32; `dtype` is the compute dtype, and softmax
and LayerNorm statistics always run in float32. With dtype "float32" every matmul runs at full
float32 precision (no TF32 / bf16 passes on GPU or TPU), so results match PyTorch to ~1e-5.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from generator.models.config import ModelConfig

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Matmul precision per compute dtype: exact float32 where float32 is asked for.
PRECISIONS = {"float32": jax.lax.Precision.HIGHEST, "bfloat16": jax.lax.Precision.DEFAULT}

ACTIVATION_FNS = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # exact erf GELU
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),  # tanh approximation
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}


def _linear(d_in: int, d_out: int, dtype: str, rngs: nnx.Rngs) -> nnx.Linear:
    """Return a float32-parameter Linear computing in `dtype` (kernel [in, out])."""
    return nnx.Linear(
        d_in,
        d_out,
        dtype=COMPUTE_DTYPES[dtype],
        param_dtype=jnp.float32,
        precision=PRECISIONS[dtype],
        rngs=rngs,
    )


def _layer_norm(config: ModelConfig, dtype: str, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """Return a LayerNorm with PyTorch's two-pass variance and the config's epsilon."""
    return nnx.LayerNorm(
        config.d_model,
        epsilon=config.layer_norm_eps,
        use_fast_variance=False,
        dtype=COMPUTE_DTYPES[dtype],
        param_dtype=jnp.float32,
        rngs=rngs,
    )


class BertEmbeddings(nnx.Module):
    """Word + token-type + absolute position embeddings, then LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        def embed(n: int) -> nnx.Embed:
            return nnx.Embed(
                n, config.d_model, dtype=COMPUTE_DTYPES[dtype], param_dtype=jnp.float32, rngs=rngs
            )

        self.word_embeddings = embed(config.vocab_size)
        self.position_embeddings = embed(config.max_positions)
        self.token_type_embeddings = embed(config.type_vocab_size)
        self.LayerNorm = _layer_norm(config, dtype, rngs)

    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array) -> jax.Array:
        """Embed [batch, token] ids into the residual stream [batch, token, d_model]."""
        positions = jnp.arange(input_ids.shape[1])  # [token]: 0..T-1
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)[None]
        return self.LayerNorm(x)


class BertSelfAttention(nnx.Module):
    """Query, key and value projections and scaled dot-product attention over all heads."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.n_heads, self.d_head = config.n_heads, config.d_head
        self.precision = PRECISIONS[dtype]
        self.query = _linear(config.d_model, config.d_model, dtype, rngs)
        self.key = _linear(config.d_model, config.d_model, dtype, rngs)
        self.value = _linear(config.d_model, config.d_model, dtype, rngs)

    def _heads(self, x: jax.Array) -> jax.Array:
        """Split [batch, token, d_model] into [batch, head, token, d_head]."""
        batch, token, _ = x.shape
        return x.reshape(batch, token, self.n_heads, self.d_head).transpose(0, 2, 1, 3)

    def __call__(self, x: jax.Array, mask_bias: jax.Array) -> dict[str, jax.Array]:
        """Attend; `mask_bias` [batch, 1, 1, key] is 0 on visible keys, finfo.min on padding.

        Returns:
            context [batch, token, d_model]; attentions [batch, head, query, key] (float32,
            post-softmax); queries / keys / values [batch, head, token, d_head] (after bias,
            before scaling).
        """
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=self.precision)
        scores = scores.astype(jnp.float32)
        scores = scores * (self.d_head**-0.5) + mask_bias
        probs = jax.nn.softmax(scores, axis=-1)  # [batch, head, query, key], float32
        context = jnp.einsum("bhqk,bhkd->bhqd", probs.astype(v.dtype), v, precision=self.precision)
        batch, _, token, _ = context.shape
        context = context.transpose(0, 2, 1, 3).reshape(batch, token, self.n_heads * self.d_head)
        return {"context": context, "attentions": probs, "queries": q, "keys": k, "values": v}


class BertSelfOutput(nnx.Module):
    """Attention output projection, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = _linear(config.d_model, config.d_model, dtype, rngs)
        self.LayerNorm = _layer_norm(config, dtype, rngs)

    def __call__(self, context: jax.Array, residual: jax.Array) -> jax.Array:
        """Project [batch, token, d_model] and add it to the residual stream."""
        return self.LayerNorm(self.dense(context) + residual)


class BertAttention(nnx.Module):
    """Self-attention block: `self` (q/k/v and softmax) then `output` (projection + norm)."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.self = BertSelfAttention(config, dtype, rngs)
        self.output = BertSelfOutput(config, dtype, rngs)

    def __call__(self, x: jax.Array, mask_bias: jax.Array) -> dict[str, jax.Array]:
        """Return the probes of `BertSelfAttention` with `context` replaced by the block output."""
        probes = self.self(x, mask_bias)
        probes["context"] = self.output(probes["context"], x)
        return probes


class BertIntermediate(nnx.Module):
    """MLP up-projection [batch, token, d_model] -> [batch, token, d_mlp] and activation."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = _linear(config.d_model, config.d_mlp, dtype, rngs)
        self.activation = config.activation

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the up-projection and the configured non-linearity."""
        return ACTIVATION_FNS[self.activation](self.dense(x))


class BertOutput(nnx.Module):
    """MLP down-projection, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = _linear(config.d_mlp, config.d_model, dtype, rngs)
        self.LayerNorm = _layer_norm(config, dtype, rngs)

    def __call__(self, h: jax.Array, residual: jax.Array) -> jax.Array:
        """Project [batch, token, d_mlp] back to d_model and add it to the residual stream."""
        return self.LayerNorm(self.dense(h) + residual)


class BertLayer(nnx.Module):
    """One transformer block: attention then MLP, each post-LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.attention = BertAttention(config, dtype, rngs)
        self.intermediate = BertIntermediate(config, dtype, rngs)
        self.output = BertOutput(config, dtype, rngs)

    def __call__(self, x: jax.Array, mask_bias: jax.Array) -> dict[str, jax.Array]:
        """Return the attention probes with `context` = the block output [batch, token, d_model]."""
        probes = self.attention(x, mask_bias)
        attended = probes["context"]
        probes["context"] = self.output(self.intermediate(attended), attended)
        return probes


class BertStack(nnx.Module):
    """The `encoder` of the checkpoint: `layer[0..L-1]`."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.layer = nnx.List([BertLayer(config, dtype, rngs) for _ in range(config.n_layers)])


class BertPooler(nnx.Module):
    """tanh(dense(hidden state of the first token))."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = _linear(config.d_model, config.d_model, dtype, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Pool [batch, token, d_model] into [batch, d_model]."""
        return jnp.tanh(self.dense(x[:, 0]))


class BertEncoder(nnx.Module):
    """BERT-like encoder (BertModel): embeddings, `n_layers` blocks, optional pooler."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        dtype: str = "float32",
        with_pooler: bool = True,
        rngs: nnx.Rngs,
    ):
        """Build the encoder.

        Args:
            config: architecture settings.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            with_pooler: whether the model has `pooler.dense` (and returns `pooler_output`).
            rngs: random streams for the (throw-away) initial parameters.
        """
        if dtype not in COMPUTE_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(COMPUTE_DTYPES)}")
        self.config = config
        self.embeddings = BertEmbeddings(config, dtype, rngs)
        self.encoder = BertStack(config, dtype, rngs)
        self.pooler = BertPooler(config, dtype, rngs) if with_pooler else None

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the encoder and return every probe point.

        Args:
            input_ids: [batch, token] int token ids.
            attention_mask: [batch, token] int, 1 for real tokens, 0 for padding.
            token_type_ids: [batch, token] int segment ids; zeros when None.

        Returns:
            hidden_states: [batch, layer(L+1), token, d_model]; index 0 is the embedding output
                (after its LayerNorm), index i the output of block i.
            attentions: [batch, layer, head, query, key], post-softmax, float32; padded keys
                get exactly 0 weight.
            queries, keys, values: [batch, layer, head, token, d_head], after bias, before scaling.
            pooler_output: [batch, d_model], only when the model has a pooler.
        """
        input_ids = jnp.asarray(input_ids, jnp.int32)
        if input_ids.shape[1] > self.config.max_positions:
            raise ValueError(
                f"{input_ids.shape[1]} tokens exceed max_positions {self.config.max_positions}"
            )
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        visible = jnp.asarray(attention_mask)[:, None, None, :] > 0  # [batch, 1, 1, key]
        mask_bias = jnp.where(visible, 0.0, jnp.finfo(jnp.float32).min).astype(jnp.float32)

        x = self.embeddings(input_ids, jnp.asarray(token_type_ids, jnp.int32))
        hidden, probes = [x], []
        for layer in self.encoder.layer:
            p = layer(x, mask_bias)
            x = p.pop("context")
            hidden.append(x)
            probes.append(p)

        out = {"hidden_states": jnp.stack(hidden, axis=1)}
        for name in ("attentions", "queries", "keys", "values"):
            out[name] = jnp.stack([p[name] for p in probes], axis=1)
        if self.pooler is not None:
            out["pooler_output"] = self.pooler(x)
        return out
