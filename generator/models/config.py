"""Architecture settings read from a Hugging Face `config.json`, in our own names.

A registry maps each supported `model_type` to the parser that turns its config dict into a
`ModelConfig`; new families (roberta, gpt2, llama, ...) plug in with `register_model_type`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.errors import ModelLoadError

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of one checkpoint, independent of its framework's key names.

    Attributes:
        family: implementation that runs it ("bert").
        model_type: `model_type` from config.json ("bert").
        vocab_size: rows of the token embedding.
        d_model: width of the residual stream.
        n_layers: transformer blocks.
        n_heads: attention heads per block.
        d_head: width of one head (d_model // n_heads).
        d_mlp: hidden width of the MLP.
        max_positions: rows of the learned position embedding.
        type_vocab_size: rows of the token-type (segment) embedding.
        layer_norm_eps: epsilon of every LayerNorm.
        activation: MLP non-linearity, a name from `ACTIVATIONS`.
        pad_token_id: id of the padding token.
    """

    family: str
    model_type: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_head: int
    d_mlp: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    activation: str
    pad_token_id: int

    @classmethod
    def from_hf_dict(cls, cfg: dict[str, Any]) -> ModelConfig:
        """Build the config from a parsed Hugging Face `config.json`.

        Args:
            cfg: the config.json contents.

        Returns:
            The matching `ModelConfig`.

        Raises:
            ModelLoadError: unsupported `model_type`, or a missing or invalid setting.
        """
        model_type = cfg.get("model_type")
        parser = _PARSERS.get(model_type)
        if parser is None:
            raise ModelLoadError(
                f"model_type {model_type!r} is not supported; supported: "
                f"{', '.join(supported_model_types())}"
            )
        return parser(cfg)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict (for the artifact manifest)."""
        return dataclasses.asdict(self)


_PARSERS: dict[str, Callable[[dict[str, Any]], ModelConfig]] = {}


def register_model_type(model_type: str, parser: Callable[[dict[str, Any]], ModelConfig]) -> None:
    """Register `parser` as the reader of config.json dicts whose model_type is `model_type`."""
    _PARSERS[model_type] = parser


def supported_model_types() -> tuple[str, ...]:
    """Return the model_type values that `ModelConfig.from_hf_dict` accepts, sorted."""
    return tuple(sorted(_PARSERS))


def _require(cfg: dict[str, Any], key: str) -> Any:
    """Return cfg[key] or raise a ModelLoadError naming the missing key."""
    if key not in cfg:
        raise ModelLoadError(f"missing setting {key!r}; add it or re-export config.json")
    return cfg[key]


def _bert_from_hf(cfg: dict[str, Any]) -> ModelConfig:
    """Parse a BertConfig dict (BERT, MiniLM and other BertModel checkpoints)."""
    d_model = int(_require(cfg, "hidden_size"))
    n_heads = int(_require(cfg, "num_attention_heads"))
    if d_model % n_heads:
        raise ModelLoadError(
            f"hidden_size {d_model} is not divisible by num_attention_heads {n_heads}"
        )
    activation = cfg.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise ModelLoadError(
            f"hidden_act {activation!r} is not supported; supported: {', '.join(ACTIVATIONS)}"
        )
    position_type = cfg.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ModelLoadError(
            f"position_embedding_type {position_type!r} is not supported; only 'absolute' is"
        )
    return ModelConfig(
        family="bert",
        model_type=cfg["model_type"],
        vocab_size=int(_require(cfg, "vocab_size")),
        d_model=d_model,
        n_layers=int(_require(cfg, "num_hidden_layers")),
        n_heads=n_heads,
        d_head=d_model // n_heads,
        d_mlp=int(_require(cfg, "intermediate_size")),
        max_positions=int(cfg.get("max_position_embeddings", 512)),
        type_vocab_size=int(cfg.get("type_vocab_size", 2)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        activation=activation,
        pad_token_id=int(cfg.get("pad_token_id") or 0),
    )


register_model_type("bert", _bert_from_hf)
