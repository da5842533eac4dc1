"""BERT-like encoders in Flax NNX: BERT, MiniLM, RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA.

One implementation, numerically matching `transformers`: post-LayerNorm blocks over learned
absolute positions. Variants differ only in details the config records:
  RoBERTa / XLM-R  position ids start at padding_idx + 1 and skip padding tokens
  DistilBERT       no token-type embedding; its own tensor names (mapped in `DISTILBERT_NAMES`)
  ELECTRA          embeddings of `embedding_size`, projected to d_model by `embeddings_project`
The attribute tree mirrors BERT's checkpoint names (`embeddings.word_embeddings`,
`encoder.layer[i].attention.self.query`, `pooler.dense`, ...); heads use generic names that each
variant's name map translates (`mlm_head.dense` -> `cls.predictions.transform.dense`, ...).

Axes: batch, token (= query / key positions), layer, head, d_model, d_head, d_mlp.
Inference only: no dropout.
"""

from __future__ import annotations

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
from generator.models.heads import (
    ClassificationHead,
    MaskedLMHead,
    ReplacedTokenHead,
    TokenClassificationHead,
    at_positions,
)
from generator.models.layers import (
    ACTIVATION_FNS,
    COMPUTE_DTYPES,
    PRECISIONS,
    attend,
    check_dtype,
    embed,
    layer_norm,
    linear,
    mask_bias,
    merge_heads,
    ordered_probes,
    split_heads,
)
from generator.models.stages import Staged

__all__ = ["ACTIVATION_FNS", "COMPUTE_DTYPES", "PRECISIONS", "BertEncoder", "FAMILY"]


def _linear(d_in: int, d_out: int, dtype: str, rngs: nnx.Rngs) -> nnx.Linear:
    """Return a float32-parameter Linear computing in `dtype` (kernel [in, out])."""
    return linear(d_in, d_out, dtype, rngs)


def _layer_norm(config: ModelConfig, dtype: str, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """Return a d_model LayerNorm with PyTorch's two-pass variance and the config's epsilon."""
    return layer_norm(config.d_model, config.layer_norm_eps, dtype, rngs)


class BertEmbeddings(nnx.Module):
    """Word + token-type + absolute position embeddings, then LayerNorm (width embedding_size)."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        width = config.embedding_size
        self.word_embeddings = embed(config.vocab_size, width, dtype, rngs)
        self.position_embeddings = embed(
            config.max_positions + config.position_offset, width, dtype, rngs
        )
        self.token_type_embeddings = (
            embed(config.type_vocab_size, width, dtype, rngs) if config.type_vocab_size else None
        )
        self.LayerNorm = layer_norm(width, config.layer_norm_eps, dtype, rngs)
        self.position_offset = config.position_offset
        self.pad_token_id = config.pad_token_id

    def positions(self, input_ids: jax.Array) -> jax.Array:
        """Return position ids [batch or 1, token].

        With an offset (RoBERTa), real tokens count up from `offset` and padding tokens get
        `offset - 1` (= padding_idx), exactly as transformers derives them from the ids.
        """
        if not self.position_offset:
            return jnp.arange(input_ids.shape[1])[None]
        real = (input_ids != self.pad_token_id).astype(jnp.int32)
        return jnp.cumsum(real, axis=1) * real + (self.position_offset - 1)

    def __call__(
        self,
        input_ids: jax.Array,
        token_type_ids: jax.Array,
        inputs_embeds: jax.Array | None = None,
    ) -> jax.Array:
        """Embed [batch, token] ids into [batch, token, embedding_size].

        `inputs_embeds` [batch, token, embedding_size] replaces the word-embedding lookup
        (positions and token types are still added): the input of gradient attributions.
        """
        words = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        x = words + self.position_embeddings(self.positions(input_ids))
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x)


class BertSelfAttention(nnx.Module):
    """Query, key and value projections and scaled dot-product attention over all heads."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.n_heads, self.d_head = config.n_heads, config.d_head
        self.precision = PRECISIONS[dtype]
        width = config.n_heads * config.d_head
        self.query = linear(config.d_model, width, dtype, rngs)
        self.key = linear(config.d_model, width, dtype, rngs)
        self.value = linear(config.d_model, width, dtype, rngs)

    def __call__(self, x: jax.Array, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Attend; `bias` [batch, 1, 1 or query, key] is 0 on visible keys, float32 min elsewhere.

        `head_scale` [head] scales each head's context (a head mask), see `attend`.

        Returns:
            context [batch, token, d_model]; attentions [batch, head, query, key] (float32,
            post-softmax); queries / keys / values [batch, head, token, d_head] (after bias,
            before scaling).
        """
        q = split_heads(self.query(x), self.n_heads, self.d_head)
        k = split_heads(self.key(x), self.n_heads, self.d_head)
        v = split_heads(self.value(x), self.n_heads, self.d_head)
        context, probs, scores = attend(
            q, k, v, bias, self.d_head**-0.5, precision=self.precision, head_scale=head_scale
        )
        return {
            "context": merge_heads(context),
            "attentions": probs,
            "attention_scores": scores,
            "queries": q,
            "keys": k,
            "values": v,
        }


class BertSelfOutput(nnx.Module):
    """Attention output projection, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = linear(config.n_heads * config.d_head, config.d_model, dtype, rngs)
        self.LayerNorm = _layer_norm(config, dtype, rngs)

    def __call__(self, context: jax.Array, residual: jax.Array) -> jax.Array:
        """Project [batch, token, d_model] and add it to the residual stream."""
        return self.LayerNorm(self.dense(context) + residual)


class BertAttention(nnx.Module):
    """Self-attention block: `self` (q/k/v and softmax) then `output` (projection + norm)."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.self = BertSelfAttention(config, dtype, rngs)
        self.output = BertSelfOutput(config, dtype, rngs)

    def __call__(self, x: jax.Array, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Return the probes of `BertSelfAttention` with `context` replaced by the block output."""
        probes = self.self(x, bias, head_scale)
        probes["context"] = self.output(probes["context"], x)
        return probes


class BertIntermediate(nnx.Module):
    """MLP up-projection [batch, token, d_model] -> [batch, token, d_mlp] and activation."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = linear(config.d_model, config.d_mlp, dtype, rngs)
        self.activation = config.activation

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the up-projection and the configured non-linearity."""
        return ACTIVATION_FNS[self.activation](self.dense(x))


class BertOutput(nnx.Module):
    """MLP down-projection, residual add, LayerNorm."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = linear(config.d_mlp, config.d_model, dtype, rngs)
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

    def __call__(self, x: jax.Array, bias: jax.Array, head_scale=None) -> dict[str, jax.Array]:
        """Return the attention probes with `context` = the block output [batch, token, d_model]."""
        probes = self.attention(x, bias, head_scale)
        attended = probes["context"]
        hidden = self.intermediate(attended)
        probes["mlp_activations"] = hidden  # [batch, token, d_mlp] after the non-linearity
        probes["context"] = self.output(hidden, attended)
        return probes


class BertStack(nnx.Module):
    """The `encoder` of the checkpoint: `layer[0..L-1]`."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.layer = nnx.List([BertLayer(config, dtype, rngs) for _ in range(config.n_layers)])


class BertPooler(nnx.Module):
    """tanh(dense(hidden state of the first token))."""

    def __init__(self, config: ModelConfig, dtype: str, rngs: nnx.Rngs):
        self.dense = linear(config.d_model, config.d_model, dtype, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Pool [batch, token, d_model] into [batch, d_model]."""
        return jnp.tanh(self.dense(x[:, 0]))


# How each variant's sequence classifier reads the hidden states: (source, hidden activation).
CLASSIFIER_STYLES = {
    "bert": ("pooler", None),
    "roberta": ("first", "tanh"),
    "xlm-roberta": ("first", "tanh"),
    "electra": ("first", "gelu"),
    "distilbert": ("first", "relu"),
    "albert": ("pooler", None),
}

# Output key of each sentence-pair head (on the pooler output) besides `logits`.
PAIR_OUTPUTS = {
    "next-sentence": "next_sentence_logits",
    "sentence-order": "sentence_order_logits",
}


def mlm_activation(config: ModelConfig) -> str:
    """Return the activation of the masked-LM transform (RoBERTa's is always exact GELU)."""
    return "gelu" if config.model_type in ("roberta", "xlm-roberta") else config.activation


class BertEncoder(Staged, nnx.Module):
    """BERT-like encoder: embeddings, `n_layers` post-LN blocks, optional pooler and heads."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        dtype: str = "float32",
        with_pooler: bool | None = None,
        rngs: nnx.Rngs,
    ):
        """Build the encoder.

        Args:
            config: architecture settings, including the heads to build.
            dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32).
            with_pooler: whether the model has `pooler.dense`; None takes `config.with_pooler`
                (or True for a headless BertModel config, as before heads were recorded).
            rngs: random streams for the (throw-away) initial parameters.
        """
        check_dtype(dtype)
        if with_pooler is None:
            with_pooler = config.with_pooler or not config.heads
        self.config = config
        self.dtype = dtype
        self.embeddings = BertEmbeddings(config, dtype, rngs)
        self.embeddings_project = (
            linear(config.embedding_size, config.d_model, dtype, rngs)
            if config.embedding_size != config.d_model
            else None
        )
        self.encoder = BertStack(config, dtype, rngs)
        self.pooler = BertPooler(config, dtype, rngs) if with_pooler else None
        self.add_heads(config, dtype, rngs)

    def add_heads(
        self, config: ModelConfig, dtype: str, rngs: nnx.Rngs, mlm_width: int | None = None
    ) -> None:
        """Build the heads recorded in `config` (`mlm_width`: the masked-LM transform's width)."""
        heads = set(config.heads)
        self.mlm_head = (
            MaskedLMHead(
                config.d_model,
                config.vocab_size,
                mlm_activation(config),
                config.layer_norm_eps,
                config.tie_word_embeddings,
                dtype,
                rngs,
                width=mlm_width,
            )
            if "masked-lm" in heads
            else None
        )
        self.nsp_head = linear(config.d_model, 2, dtype, rngs) if "next-sentence" in heads else None
        self.rtd_head = (
            ReplacedTokenHead(config.d_model, config.activation, dtype, rngs)
            if "replaced-token-detection" in heads
            else None
        )
        n_labels = len(config.labels)
        if "classification" in heads:
            source, activation = CLASSIFIER_STYLES[config.model_type]
            self.classifier = ClassificationHead(
                config.d_model, n_labels, source, activation, dtype, rngs
            )
        elif "token-classification" in heads:
            self.classifier = TokenClassificationHead(config.d_model, n_labels, dtype, rngs)
        else:
            self.classifier = None

    def blocks(self) -> list[nnx.Module]:
        """Return the block applied at each layer, in order (one module per application)."""
        return list(self.encoder.layer)

    def embed_inputs(
        self, input_ids: jax.Array, token_type_ids: jax.Array, inputs_embeds: jax.Array | None
    ) -> jax.Array:
        """Return the input of the first block [batch, token, d_model] (hidden_states[0])."""
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        return x if self.embeddings_project is None else self.embeddings_project(x)

    def pair_heads(self, pooled: jax.Array | None) -> dict[str, jax.Array]:
        """Return the logits of the sentence-pair heads on the pooler output, by head kind."""
        return {} if self.nsp_head is None else {"next-sentence": self.nsp_head(pooled)}

    def head_outputs(
        self, x: jax.Array, attention_mask: jax.Array, pooled: jax.Array | None, positions=None
    ) -> dict[str, jax.Array]:
        """Return the logits of every head, by head kind, from the last layer's output `x`.

        positions: [batch] the masked-LM head reads only these rows ([batch, 1, vocab]).
        """
        head_outputs = {}
        if self.mlm_head is not None:
            embedding = self.embeddings.word_embeddings.embedding[...]
            head_outputs["masked-lm"] = self.mlm_head(at_positions(x, positions), embedding)
        if self.rtd_head is not None:
            head_outputs["replaced-token-detection"] = self.rtd_head(x)
        if isinstance(self.classifier, ClassificationHead):
            head_outputs["classification"] = self.classifier(x, attention_mask, pooled)
        elif self.classifier is not None:
            head_outputs["token-classification"] = self.classifier(x)
        return {**head_outputs, **self.pair_heads(pooled)}

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
        head_mask: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Run the encoder and return every probe point.

        Args:
            input_ids: [batch, token] int token ids.
            attention_mask: [batch, token] int, 1 for real tokens, 0 for padding.
            token_type_ids: [batch, token] int segment ids; zeros when None.
            inputs_embeds: [batch, token, embedding_size] used instead of the word-embedding
                lookup of `input_ids` (which still set positions).
            head_mask: [layer, head] multipliers of each head's output (1 keeps, 0 removes).

        Returns:
            hidden_states: [batch, layer(L+1), token, d_model]; index 0 is the embedding output
                (after its LayerNorm and, for ELECTRA, the projection), index i block i's output.
            attentions: [batch, layer, head, query, key], post-softmax, float32; padded keys
                get exactly 0 weight.
            queries, keys, values: [batch, layer, head, token, d_head], after bias, before scaling.
            mlp_activations: [batch, layer, token, d_mlp], the MLP hidden activation after its
                non-linearity (the input of each block's down-projection).
            pooler_output: [batch, d_model], only when the model has a pooler.
            logits: output of the primary head (see `generator.models.heads`), when there is one.
            next_sentence_logits: [batch, 2], only for a BERT pre-training checkpoint.
            sentence_order_logits: [batch, 2], only for an ALBERT pre-training checkpoint.
        """
        x, ctx = self.embed_stage(
            input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds
        )
        return self.run_stages(x, ctx, head_mask)

    def embed_stage(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        inputs_embeds: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Return the first block's input [batch, token, d_model] and the context of every layer.

        The context holds `bias` [batch, 1, 1, key] (the padding mask bias) and
        `attention_mask` [batch, token]; arguments as in `__call__`.
        """
        input_ids = jnp.asarray(input_ids, jnp.int32)
        if input_ids.shape[1] > self.config.max_positions:
            raise ValueError(
                f"{input_ids.shape[1]} tokens exceed max_positions {self.config.max_positions}"
            )
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        attention_mask = jnp.asarray(attention_mask)
        x = self.embed_inputs(input_ids, jnp.asarray(token_type_ids, jnp.int32), inputs_embeds)
        return x, {"bias": mask_bias(attention_mask), "attention_mask": attention_mask}

    def block_step(self, block, x, per_layer, key, *, ctx):
        """Run one block; return (its output, (its output, its probes))."""
        del key
        p = block(x, ctx["bias"], per_layer["head_scale"])
        x = p.pop("context")
        return x, (x, p)

    def output_stage(
        self, x: jax.Array, ctx, hidden: jax.Array, probes: dict[str, jax.Array], positions=None
    ) -> dict[str, jax.Array]:
        """Return `__call__`'s outputs from the last layer's output x and every layer's.

        Args:
            x: [batch, token, d_model] the last block's output.
            ctx: the context of `embed_stage`.
            hidden: [batch, layer(L+1), token, d_model] the first block's input, then every
                block's output.
            probes: {name: [batch, layer, ...]} from `layer_stage` over every layer.
            positions: [batch] int or None: the LM head reads only these rows, so `logits`
                are [batch, 1, vocab] (the objectives need no other position); else every
                position's.
        """
        out = {"hidden_states": hidden, **ordered_probes(probes)}
        pooled = self.pooler(x) if self.pooler is not None else None
        if pooled is not None:
            out["pooler_output"] = pooled
        head_outputs = self.head_outputs(x, ctx["attention_mask"], pooled, positions)
        out.update({PAIR_OUTPUTS[k]: v for k, v in head_outputs.items() if k in PAIR_OUTPUTS})
        if self.config.heads:
            out["logits"] = head_outputs[self.config.heads[0]]
        return out


# --- config parsing -----------------------------------------------------------------------------


def _check_positions(cfg: dict[str, Any]) -> None:
    position_type = cfg.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ModelLoadError(
            f"position_embedding_type {position_type!r} is not supported; only 'absolute' is"
        )


def parse_bert_like(cfg: dict[str, Any]) -> ModelConfig:
    """Parse a BERT, RoBERTa, XLM-RoBERTa or ELECTRA config dict."""
    model_type = cfg["model_type"]
    d_model = int(require(cfg, "hidden_size"))
    n_heads = int(require(cfg, "num_attention_heads"))
    _check_positions(cfg)
    roberta = model_type in ("roberta", "xlm-roberta")
    pad = cfg.get("pad_token_id")
    pad = int(pad) if pad is not None else (1 if roberta else 0)
    offset = pad + 1 if roberta else 0
    max_embeddings = int(cfg.get("max_position_embeddings", 512))
    if max_embeddings <= offset:
        raise ModelLoadError(f"max_position_embeddings {max_embeddings} leaves no positions")
    return ModelConfig(
        family="bert",
        model_type=model_type,
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=int(require(cfg, "num_hidden_layers")),
        n_heads=n_heads,
        d_head=head_width(d_model, n_heads),
        d_mlp=int(require(cfg, "intermediate_size")),
        max_positions=max_embeddings - offset,
        type_vocab_size=int(cfg.get("type_vocab_size", 2)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        activation=check_activation(cfg.get("hidden_act", "gelu")),
        pad_token_id=pad,
        position_offset=offset,
        embedding_size=int(cfg.get("embedding_size") or d_model),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
    )


def parse_distilbert(cfg: dict[str, Any]) -> ModelConfig:
    """Parse a DistilBERT config dict (`dim`, `n_layers`, `hidden_dim`, `activation`)."""
    d_model = int(require(cfg, "dim", "hidden_size"))
    n_heads = int(require(cfg, "n_heads", "num_attention_heads"))
    return ModelConfig(
        family="bert",
        model_type="distilbert",
        vocab_size=int(require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=int(require(cfg, "n_layers", "num_hidden_layers")),
        n_heads=n_heads,
        d_head=head_width(d_model, n_heads, "dim"),
        d_mlp=int(require(cfg, "hidden_dim", "intermediate_size")),
        max_positions=int(cfg.get("max_position_embeddings", 512)),
        type_vocab_size=0,
        layer_norm_eps=1e-12,  # fixed in DistilBERT
        activation=check_activation(cfg.get("activation", "gelu"), "activation"),
        pad_token_id=int(cfg.get("pad_token_id") or 0),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
    )


def parse_config(cfg: dict[str, Any]) -> ModelConfig:
    """Parse any BERT-like config dict."""
    if cfg.get("model_type") == "distilbert":
        return parse_distilbert(cfg)
    return parse_bert_like(cfg)


# --- heads found in the checkpoint ---------------------------------------------------------------

MLM_MARKERS = {
    "bert": "cls.predictions.transform.dense.weight",
    "roberta": "lm_head.dense.weight",
    "xlm-roberta": "lm_head.dense.weight",
    "distilbert": "vocab_transform.weight",
}


def with_heads(config: ModelConfig, cfg: dict[str, Any], names: frozenset[str]) -> ModelConfig:
    """Return `config` with the pooler and heads present among the checkpoint `names`."""
    import dataclasses

    heads = []
    if MLM_MARKERS.get(config.model_type) in names:
        heads.append("masked-lm")
    if "discriminator_predictions.dense.weight" in names:
        heads.append("replaced-token-detection")
    if any(name.startswith(("classifier.", "pre_classifier.")) for name in names):
        architectures = " ".join(cfg.get("architectures") or [])
        plain = "classifier.weight" in names and config.model_type not in ("bert", "distilbert")
        token = "TokenClassification" in architectures or plain
        heads.append("token-classification" if token else "classification")
    if "cls.seq_relationship.weight" in names:
        heads.append("next-sentence")
    classifying = {"classification", "token-classification"} & set(heads)
    return dataclasses.replace(
        config,
        heads=tuple(heads),
        labels=label_names(cfg) if classifying else (),
        with_pooler=any(name.startswith("pooler.") for name in names),
    )


# --- checkpoint names ----------------------------------------------------------------------------

PREFIXES = {
    "bert": ("bert.",),
    "roberta": ("roberta.",),
    "xlm-roberta": ("roberta.",),
    "distilbert": ("distilbert.",),
    "electra": ("electra.",),
}

_LAYER = r"^encoder\.layer\.(\d+)\."
DISTILBERT_NAMES = (
    (_LAYER + r"attention\.self\.query\.", r"transformer.layer.\1.attention.q_lin."),
    (_LAYER + r"attention\.self\.key\.", r"transformer.layer.\1.attention.k_lin."),
    (_LAYER + r"attention\.self\.value\.", r"transformer.layer.\1.attention.v_lin."),
    (_LAYER + r"attention\.output\.dense\.", r"transformer.layer.\1.attention.out_lin."),
    (_LAYER + r"attention\.output\.LayerNorm\.", r"transformer.layer.\1.sa_layer_norm."),
    (_LAYER + r"intermediate\.dense\.", r"transformer.layer.\1.ffn.lin1."),
    (_LAYER + r"output\.dense\.", r"transformer.layer.\1.ffn.lin2."),
    (_LAYER + r"output\.LayerNorm\.", r"transformer.layer.\1.output_layer_norm."),
)

# Where each variant keeps its masked-LM head: (dense, norm, bias, decoder) checkpoint names.
MLM_NAMES = {
    "bert": (
        "cls.predictions.transform.dense.",
        "cls.predictions.transform.LayerNorm.",
        "cls.predictions.bias",
        "cls.predictions.decoder.",
    ),
    "roberta": ("lm_head.dense.", "lm_head.layer_norm.", "lm_head.bias", "lm_head.decoder."),
    "distilbert": (
        "vocab_transform.",
        "vocab_layer_norm.",
        "vocab_projector.bias",
        "vocab_projector.",
    ),
}
MLM_NAMES["xlm-roberta"] = MLM_NAMES["roberta"]

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def checkpoint_names(config: ModelConfig) -> NameMap:
    """Return the name map of a BERT-like checkpoint of `config.model_type`."""
    model_type = config.model_type
    renames: list[tuple[str, str]] = []
    tied: list[tuple[str, str]] = []
    if model_type == "distilbert":
        renames += DISTILBERT_NAMES
    if model_type in MLM_NAMES:
        dense, norm, bias, decoder = MLM_NAMES[model_type]
        renames += [
            (r"^mlm_head\.dense\.", dense),
            (r"^mlm_head\.norm\.", norm),
            (r"^mlm_head\.bias$", bias),
            (r"^mlm_head\.decoder\.", decoder),
        ]
        if config.tie_word_embeddings:
            tied.append((f"{decoder}weight", WORD_EMBEDDINGS))
        if f"{decoder}bias" != bias:
            tied.append((f"{decoder}bias", bias))
    renames += [
        (r"^nsp_head\.", "cls.seq_relationship."),
        (r"^rtd_head\.", "discriminator_predictions."),
    ]
    if "token-classification" in config.heads or model_type in ("bert", "distilbert"):
        renames.append((r"^classifier\.out\.", "classifier."))
    else:
        renames.append((r"^classifier\.out\.", "classifier.out_proj."))
    if model_type == "distilbert":
        renames.append((r"^classifier\.dense\.", "pre_classifier."))
    return NameMap(prefixes=PREFIXES[model_type], renames=tuple(renames), tied=tuple(tied))


def build(config: ModelConfig, *, dtype: str = "float32", rngs: nnx.Rngs) -> BertEncoder:
    """Build the encoder (with the pooler and heads recorded in `config`)."""
    return BertEncoder(config, dtype=dtype, with_pooler=config.with_pooler, rngs=rngs)


FAMILY = Family(
    name="bert",
    model_types=("bert", "roberta", "xlm-roberta", "distilbert", "electra"),
    parse=parse_config,
    with_heads=with_heads,
    build=build,
    names=checkpoint_names,
)
