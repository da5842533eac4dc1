"""Architecture settings read from a Hugging Face `config.json`, in our own names.

Each family's parser turns a config dict into a `ModelConfig`; `generator.models.registry`
maps every supported `model_type` to its parser (`parse_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from generator.errors import ModelLoadError
from generator.models.rope import RopeConfig

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")


class ArchitectureConfig(Protocol):
    """What the extract stage and the pages read of every family's config.

    `ModelConfig` (encoders, decoders) and `T5Config` (encoder-decoders) both provide it.
    """

    family: str
    model_type: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_head: int
    d_mlp: int
    activation: str
    causal: bool
    heads: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def primary_head(self) -> str | None: ...

    @property
    def seq2seq(self) -> bool: ...

    @property
    def cls_last(self) -> bool: ...

    @property
    def n_weight_blocks(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of one checkpoint, independent of its framework's key names.

    Attributes:
        family: implementation that runs it ("bert", "albert", "gpt2", "llama").
        model_type: `model_type` from config.json ("bert", "roberta", "mistral", ...).
        vocab_size: rows of the token embedding.
        d_model: width of the residual stream.
        n_layers: transformer blocks (ALBERT: block applications; see `n_weight_blocks`).
        n_heads: attention (query) heads per block.
        d_head: width of one head.
        d_mlp: hidden width of the MLP.
        max_positions: longest input in tokens the model accepts; None when positions are
            relative and unlimited (XLNet).
        layer_norm_eps: epsilon of every LayerNorm / RMSNorm.
        activation: MLP non-linearity, a name from `ACTIVATIONS`.
        pad_token_id: id of the padding token (0 when the config names none).
        type_vocab_size: rows of the token-type (segment) embedding; 0 when there is none.
        n_kv_heads: key/value heads (grouped-query attention when < n_heads); 0 means n_heads.
        causal: decoder (each token sees only earlier ones) rather than encoder.
        position_offset: first position id (RoBERTa: padding_idx + 1); 0 otherwise.
        embedding_size: width of the token embeddings (ELECTRA); 0 means d_model.
        tie_word_embeddings: the output head reuses the token embedding matrix.
        rope: rotary position settings (Llama-like decoders); None for learned positions.
        sliding_windows: per layer, the sliding attention window or None; empty when no layer
            has one.
        attention_bias: q/k/v projections have a bias.
        output_bias: attention output projection has a bias.
        mlp_bias: MLP projections have biases.
        scale_attention: scores are scaled by d_head ** -0.5 (GPT-2 can switch it off).
        scale_by_layer: scores are further divided by (layer index + 1) (GPT-2 option).
        with_pooler: the encoder has a pooler (dense + tanh on the first token).
        heads: output heads found in the checkpoint, primary first ("masked-lm",
            "next-sentence", "classification", "token-classification",
            "replaced-token-detection", "causal-lm", "sentence-order"); the primary one
            fills `logits`.
        labels: class names of a classification head, in logit order.
        clamp_len: relative distances are clipped to +-clamp_len (XLNet); <= 0: no clipping.
        cls_last: the classification token is the last real token (XLNet: `text <sep> <cls>`),
            not the first: `cls` pooling and the classifier read it there.
        attention_note: what the attention probes show when it needs saying (XLNet: the
            content stream only); shown on the overview and attention pages.
    """

    family: str
    model_type: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_head: int
    d_mlp: int
    max_positions: int | None
    layer_norm_eps: float
    activation: str
    pad_token_id: int
    type_vocab_size: int = 0
    n_kv_heads: int = 0
    causal: bool = False
    position_offset: int = 0
    embedding_size: int = 0
    tie_word_embeddings: bool = False
    rope: RopeConfig | None = None
    sliding_windows: tuple[int | None, ...] = ()
    attention_bias: bool = True
    output_bias: bool = True
    mlp_bias: bool = True
    scale_attention: bool = True
    scale_by_layer: bool = False
    with_pooler: bool = False
    heads: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    clamp_len: int = -1
    cls_last: bool = False
    attention_note: str = ""

    def __post_init__(self):
        if not self.n_kv_heads:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if not self.embedding_size:
            object.__setattr__(self, "embedding_size", self.d_model)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict (for the artifact manifest)."""
        return dataclasses.asdict(self)

    @property
    def n_weight_blocks(self) -> int:
        """Return how many distinct sets of block weights the model holds (ALBERT shares them)."""
        return self.n_layers

    @property
    def primary_head(self) -> str | None:
        """Return the head whose output is `logits`, or None for a headless checkpoint."""
        return self.heads[0] if self.heads else None

    @property
    def seq2seq(self) -> bool:
        """Return False: encoders and decoders have one stack (see `T5Config`)."""
        return False


def require(cfg: dict[str, Any], *keys: str) -> Any:
    """Return the value of the first of `keys` in cfg, or raise a ModelLoadError naming it."""
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    raise ModelLoadError(f"missing setting {keys[0]!r}; add it or re-export config.json")


def check_activation(name: Any, key: str = "hidden_act") -> str:
    """Return `name` if it is a supported activation, else raise a ModelLoadError."""
    if name not in ACTIVATIONS:
        raise ModelLoadError(
            f"{key} {name!r} is not supported; supported: {', '.join(ACTIVATIONS)}"
        )
    return name


def head_width(d_model: int, n_heads: int, key: str = "hidden_size") -> int:
    """Return d_model // n_heads, or raise when it does not divide evenly."""
    if n_heads <= 0 or d_model % n_heads:
        raise ModelLoadError(f"{key} {d_model} is not divisible by num_attention_heads {n_heads}")
    return d_model // n_heads


def label_names(cfg: dict[str, Any]) -> tuple[str, ...]:
    """Return class names from `id2label` (in id order), or LABEL_i for `num_labels`."""
    id2label = cfg.get("id2label") or {}
    if id2label:
        try:
            return tuple(str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k)))
        except (TypeError, ValueError):
            pass
    return tuple(f"LABEL_{i}" for i in range(int(cfg.get("num_labels") or 2)))


_require = require  # older name, kept for callers written against it
