"""ALBERT in Flax NNX: factorised embeddings and cross-layer parameter sharing.

Numerically matches `transformers`' AlbertModel / AlbertForMaskedLM / AlbertForPreTraining /
AlbertForSequenceClassification / AlbertForTokenClassification. What differs from BERT:
  embeddings     BERT's, at width `embedding_size` (E), projected to d_model (H) by
                 `encoder.embedding_hidden_mapping_in`
  sharing        `num_hidden_groups` (G) groups of `inner_group_num` (I) blocks hold every
                 block weight; the stack applies group int(i / (L / G)) at step i of
                 `num_hidden_layers` (L), and each step runs the I blocks of its group in turn
  blocks         post-LayerNorm like BERT, with ALBERT's names (`attention.dense`,
                 `attention.LayerNorm`, `ffn`, `ffn_output`, `full_layer_layer_norm`)
  heads          masked-LM transform H -> E, LayerNorm(E), tied E -> vocab unembedding;
                 sentence-order prediction (`sop_classifier`) and classifiers on the pooler

A "layer" of every probe is one block application (transformers records hidden states and
attentions per block too): n_layers = L * I, and `layer_blocks[layer]` names the shared block
(g * I + i) whose weights it applies. The parameter tree holds each shared block once.

Axes: batch, token (= query / key positions), layer (application), head, d_model, d_head.
Inference only: no dropout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
from flax import nnx

from generator.errors import ModelLoadError
from generator.models.bert import BertEmbeddings, BertEncoder, BertPooler, BertSelfAttention
from generator.models.config import (
    ModelConfig,
    check_activation,
    head_width,
    label_names,
    require,
)
from generator.models.family import Family, NameMap
from generator.models.layers import ACTIVATION_FNS, check_dtype, layer_norm, linear


@dataclass(frozen=True)
class AlbertConfig(ModelConfig):
    """ModelConfig plus ALBERT's sharing (recorded in manifest.model.config).

    Attributes:
        n_groups: `num_hidden_groups`, groups of shared blocks.
        inner_group_num: blocks per group, run in turn at each step.
        layer_groups: per layer (block application), the group it uses.
        layer_blocks: per layer, the shared block it applies (group * inner_group_num + inner
            index), the index of `shared_block_layers`.
        sentence_order_labels: outputs of the sentence-order head (2), 0 without one.
    """

    n_groups: int = 1
    inner_group_num: int = 1
    layer_groups: tuple[int, ...] = ()
    layer_blocks: tuple[int, ...] = ()
    sentence_order_labels: int = 0

    @property
    def n_weight_blocks(self) -> int:
        """Return how many distinct sets of block weights the checkpoint holds (G * I)."""
        return self.n_groups * self.inner_group_num

    def shared_block_layers(self) -> list[list[int]]:
        """Return per shared block the layers (applications) that use its weights."""
        layers: list[list[int]] = [[] for _ in range(self.n_weight_blocks)]
        for layer, block in enumerate(self.layer_blocks):
            layers[block].append(layer)
        return layers


class AlbertAttention(BertSelfAttention):
    """BERT's q/k/v attention, then `dense`, residual add and `LayerNorm` (ALBERT's names)."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        super().__init__(config, dtype, rngs)
        self.dense = linear(config.n_heads * config.d_head, config.d_model, dtype, rngs)
        self.LayerNorm = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)

    def __call__(self, x: jax.Array, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Return the probes of `BertSelfAttention` with `context` = the block's attention output."""
        probes = super().__call__(x, bias, head_scale)
        probes["context"] = self.LayerNorm(x + self.dense(probes["context"]))
        return probes


class AlbertLayer(nnx.Module):
    """One block: attention, then ffn -> activation -> ffn_output, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.attention = AlbertAttention(config, dtype, rngs)
        self.ffn = linear(config.d_model, config.d_mlp, dtype, rngs)
        self.ffn_output = linear(config.d_mlp, config.d_model, dtype, rngs)
        self.full_layer_layer_norm = layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)
        self.activation = config.activation

    def __call__(self, x: jax.Array, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Return the attention probes with `context` = the block output [batch, token, d_model]."""
        probes = self.attention(x, bias, head_scale)
        attended = probes["context"]
        hidden = ACTIVATION_FNS[self.activation](self.ffn(attended))
        probes["mlp_activations"] = hidden  # [batch, token, d_mlp] after the non-linearity
        probes["context"] = self.full_layer_layer_norm(self.ffn_output(hidden) + attended)
        return probes


class AlbertLayerGroup(nnx.Module):
    """One group of `inner_group_num` shared blocks (`albert_layers`)."""

    def __init__(self, config: AlbertConfig, dtype: str, rngs: nnx.Rngs):
        self.albert_layers = nnx.List(
            [AlbertLayer(config, dtype, rngs) for _ in range(config.inner_group_num)]
        )


class AlbertTransformer(nnx.Module):
    """The checkpoint's `encoder`: the E -> H projection and the G groups of shared blocks."""

    def __init__(self, config: AlbertConfig, dtype: str, rngs: nnx.Rngs):
        self.embedding_hidden_mapping_in = linear(
            config.embedding_size, config.d_model, dtype, rngs
        )
        self.albert_layer_groups = nnx.List(
            [AlbertLayerGroup(config, dtype, rngs) for _ in range(config.n_groups)]
        )


class AlbertEncoder(BertEncoder):
    """ALBERT: BERT's forward pass and heads over shared blocks applied `n_layers` times."""

    def __init__(self, config: AlbertConfig, *, dtype: str = "float32", rngs: nnx.Rngs):
        """Build the model with the pooler and heads recorded in `config`.

        Args:
            config: architecture settings (an `AlbertConfig`), including the heads to build.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            rngs: random streams for the (throw-away) initial parameters.
        """
        check_dtype(dtype)
        self.config = config
        self.dtype = dtype
        self.embeddings = BertEmbeddings(config, dtype, rngs)
        self.encoder = AlbertTransformer(config, dtype, rngs)
        self.pooler = BertPooler(config, dtype, rngs) if config.with_pooler else None
        self.add_heads(config, dtype, rngs, mlm_width=config.embedding_size)
        self.sop_head = (
            linear(config.d_model, config.sentence_order_labels, dtype, rngs)
            if "sentence-order" in config.heads
            else None
        )

    def blocks(self) -> list[nnx.Module]:
        """Return the shared block applied at each layer (the same module several times)."""
        groups = self.encoder.albert_layer_groups
        inner = self.config.inner_group_num
        return [
            groups[group].albert_layers[block % inner]
            for group, block in zip(self.config.layer_groups, self.config.layer_blocks, strict=True)
        ]

    def embed_inputs(
        self, input_ids: jax.Array, token_type_ids: jax.Array, inputs_embeds: jax.Array | None
    ) -> jax.Array:
        """Return the projected embeddings [batch, token, d_model] (hidden_states[0])."""
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        return self.encoder.embedding_hidden_mapping_in(x)

    def pair_heads(self, pooled: jax.Array | None) -> dict[str, jax.Array]:
        """Return the sentence-order logits [batch, 2] when the checkpoint has that head."""
        return {} if self.sop_head is None else {"sentence-order": self.sop_head(pooled)}


# --- config parsing -----------------------------------------------------------------------------


def sharing(n_steps: int, n_groups: int, inner: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return (group, shared block) per block application, as transformers' AlbertTransformer.

    Step i of `n_steps` uses group int(i / (n_steps / n_groups)) and runs its `inner` blocks.
    """
    groups, blocks = [], []
    for step in range(n_steps):
        group = int(step / (n_steps / n_groups))
        for index in range(inner):
            groups.append(group)
            blocks.append(group * inner + index)
    return tuple(groups), tuple(blocks)


def parse_config(cfg: dict[str, Any]) -> AlbertConfig:
    """Parse an ALBERT config dict (`num_hidden_groups`, `inner_group_num`, `embedding_size`)."""
    d_model = int(require(cfg, "hidden_size"))
    n_heads = int(require(cfg, "num_attention_heads"))
    position_type = cfg.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ModelLoadError(
            f"position_embedding_type {position_type!r} is not supported; only 'absolute' is"
        )
    n_steps = int(require(cfg, "num_hidden_layers"))
    n_groups = int(1 if cfg.get("num_hidden_groups") is None else cfg["num_hidden_groups"])
    inner = int(1 if cfg.get("inner_group_num") is None else cfg["inner_group_num"])
    if n_steps < 1 or not 1 <= n_groups <= n_steps or inner < 1:
        raise ModelLoadError(
            f"num_hidden_layers {n_steps}, num_hidden_groups {n_groups} and inner_group_num "
            f"{inner} must be positive, with at most one group per layer"
        )
    groups, blocks = sharing(n_steps, n_groups, inner)
    return AlbertConfig(
        family="albert",
        model_type="albert",
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=n_steps * inner,
        n_heads=n_heads,
        d_head=head_width(d_model, n_heads),
        d_mlp=int(require(cfg, "intermediate_size")),
        max_positions=int(cfg.get("max_position_embeddings", 512)),
        type_vocab_size=int(cfg.get("type_vocab_size", 2)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        activation=check_activation(cfg.get("hidden_act", "gelu_new")),
        pad_token_id=int(cfg.get("pad_token_id") or 0),
        embedding_size=int(cfg.get("embedding_size") or 128),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        n_groups=n_groups,
        inner_group_num=inner,
        layer_groups=groups,
        layer_blocks=blocks,
    )


def with_heads(config: AlbertConfig, cfg: dict[str, Any], names: frozenset[str]) -> AlbertConfig:
    """Return `config` with the pooler and heads present among the checkpoint `names`."""
    heads = []
    if "predictions.dense.weight" in names:
        heads.append("masked-lm")
    if "classifier.weight" in names:
        token = "TokenClassification" in " ".join(cfg.get("architectures") or [])
        heads.append("token-classification" if token else "classification")
    if "sop_classifier.classifier.weight" in names:
        heads.append("sentence-order")
    return dataclasses.replace(
        config,
        heads=tuple(heads),
        labels=label_names(cfg) if "classifier.weight" in names else (),
        with_pooler="pooler.weight" in names,
        sentence_order_labels=len(label_names(cfg)) if "sentence-order" in heads else 0,
    )


# --- checkpoint names ----------------------------------------------------------------------------

RENAMES = (
    (r"^pooler\.dense\.", "pooler."),
    (r"^mlm_head\.dense\.", "predictions.dense."),
    (r"^mlm_head\.norm\.", "predictions.LayerNorm."),
    (r"^mlm_head\.bias$", "predictions.bias"),
    (r"^mlm_head\.decoder\.", "predictions.decoder."),
    (r"^sop_head\.", "sop_classifier.classifier."),
    (r"^classifier\.out\.", "classifier."),
)


def checkpoint_names(config: ModelConfig) -> NameMap:
    """Return the name map of an ALBERT checkpoint (tied decoder weight and bias)."""
    tied = [("predictions.decoder.bias", "predictions.bias")]
    if config.tie_word_embeddings:
        tied.insert(0, ("predictions.decoder.weight", "embeddings.word_embeddings.weight"))
    return NameMap(prefixes=("albert.",), renames=RENAMES, tied=tuple(tied))


def build(config: AlbertConfig, *, dtype: str = "float32", rngs: nnx.Rngs) -> AlbertEncoder:
    """Build the model (with the pooler and heads recorded in `config`)."""
    return AlbertEncoder(config, dtype=dtype, rngs=rngs)


FAMILY = Family(
    name="albert",
    model_types=("albert",),
    parse=parse_config,
    with_heads=with_heads,
    build=build,
    names=checkpoint_names,
)
