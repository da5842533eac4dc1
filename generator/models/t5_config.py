"""T5 architecture settings read from a Hugging Face `config.json` (model_type "t5").

T5 differs from the encoder-only families in ways the shared `ModelConfig` does not describe
(a decoder stack, relative position buckets, gated MLPs, an optionally tied LM head), so it has
its own config record; it keeps the common field names (n_layers, n_heads, d_model, d_head,
d_mlp, activation, vocab_size) that reducers and pages read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from generator.errors import ModelLoadError
from generator.models.config import ACTIVATIONS, _require

FAMILY = "t5"


@dataclass(frozen=True)
class T5Config:
    """Shape and numerics of one T5 checkpoint, in our own names.

    Attributes:
        family: "t5".
        model_type: `model_type` from config.json.
        vocab_size: rows of the shared token embedding (and of the LM head).
        d_model: width of the residual stream.
        n_layers: encoder blocks.
        n_decoder_layers: decoder blocks.
        n_heads: attention heads per attention layer.
        d_head: width of one head (`d_kv`; n_heads * d_head need not equal d_model).
        d_mlp: hidden width of the MLP (`d_ff`).
        activation: MLP non-linearity, a name from `ACTIVATIONS`.
        gated: True for the gated MLP of T5 v1.1 (act(wi_0 x) * wi_1 x).
        feed_forward_proj: the checkpoint's own name of the MLP kind ("relu", "gated-gelu").
        relative_buckets: relative-position buckets per direction set.
        relative_max_distance: distance beyond which positions share the last bucket.
        layer_norm_eps: epsilon of every RMS-style LayerNorm.
        scale_decoder_outputs: multiply the decoder output by d_model**-0.5 before the LM head
            (T5 v1.0 with a tied head; off for untied v1.1 / Flan checkpoints).
        pad_token_id, eos_token_id, decoder_start_token_id: special token ids.
        max_positions: None, T5 has no absolute position limit.
    """

    family: str
    model_type: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_decoder_layers: int
    n_heads: int
    d_head: int
    d_mlp: int
    activation: str
    gated: bool
    feed_forward_proj: str
    relative_buckets: int
    relative_max_distance: int
    layer_norm_eps: float
    scale_decoder_outputs: bool
    pad_token_id: int
    eos_token_id: int
    decoder_start_token_id: int
    max_positions: int | None = None
    # What the shared extract stage asks of every config: the corpus pass runs the (bidirectional)
    # encoder, and the LM head belongs to the decoder, which only the showcase runs.
    causal: bool = False
    heads: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def primary_head(self) -> str | None:
        """Return None: no head of the encoder fills corpus-pass logits."""
        return None

    @property
    def seq2seq(self) -> bool:
        """Return True: T5 is an encoder-decoder."""
        return True

    @property
    def cls_last(self) -> bool:
        """Return False: T5 has no classification token (`ModelConfig.cls_last`)."""
        return False

    @property
    def n_weight_blocks(self) -> int:
        """Return the encoder blocks: T5 shares no block weights (`ModelConfig.n_weight_blocks`)."""
        return self.n_layers

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict (for the artifact manifest)."""
        return dataclasses.asdict(self)


def _mlp_kind(cfg: dict[str, Any]) -> tuple[str, bool]:
    """Return (activation, gated) from `feed_forward_proj`, as transformers' T5Config does."""
    proj = cfg.get("feed_forward_proj", "relu")
    parts = proj.split("-") if isinstance(proj, str) else []
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ModelLoadError(
            f"feed_forward_proj {proj!r} is not valid; use 'ACT' or 'gated-ACT' (e.g. 'gated-gelu')"
        )
    gated = len(parts) == 2
    activation = "gelu_new" if proj == "gated-gelu" else parts[-1]
    if activation not in ACTIVATIONS:
        raise ModelLoadError(
            f"feed_forward_proj activation {activation!r} is not supported; supported: "
            f"{', '.join(ACTIVATIONS)}"
        )
    for key, expected in (("is_gated_act", gated), ("dense_act_fn", activation)):
        if cfg.get(key) is not None and cfg[key] != expected:
            raise ModelLoadError(
                f"{key} {cfg[key]!r} contradicts feed_forward_proj {proj!r}; "
                "remove it from config.json or fix feed_forward_proj"
            )
    return activation, gated


def _first_id(value: Any, default: int) -> int:
    """Return a token id that config.json may give as an int, a list of ints, or null."""
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if value is not None else default


def t5_from_hf(cfg: dict[str, Any]) -> T5Config:
    """Parse a T5Config dict (T5 v1.0, v1.1, Flan-T5 and other T5ForConditionalGeneration)."""
    activation, gated = _mlp_kind(cfg)
    n_layers = int(_require(cfg, "num_layers"))
    decoder_layers = cfg.get("num_decoder_layers")
    tied = cfg.get("tie_word_embeddings", True) is not False
    pad = int(cfg.get("pad_token_id") or 0)
    start = cfg.get("decoder_start_token_id")
    return T5Config(
        family=FAMILY,
        model_type=cfg["model_type"],
        vocab_size=int(_require(cfg, "vocab_size")),
        d_model=int(_require(cfg, "d_model")),
        n_layers=n_layers,
        n_decoder_layers=int(decoder_layers) if decoder_layers is not None else n_layers,
        n_heads=int(_require(cfg, "num_heads")),
        d_head=int(_require(cfg, "d_kv")),
        d_mlp=int(_require(cfg, "d_ff")),
        activation=activation,
        gated=gated,
        feed_forward_proj=str(cfg.get("feed_forward_proj", "relu")),
        relative_buckets=int(cfg.get("relative_attention_num_buckets", 32)),
        relative_max_distance=int(cfg.get("relative_attention_max_distance", 128)),
        layer_norm_eps=float(cfg.get("layer_norm_epsilon", 1e-6)),
        # transformers 5 writes scale_decoder_outputs; older configs say tie_word_embeddings.
        scale_decoder_outputs=bool(cfg.get("scale_decoder_outputs", tied)),
        pad_token_id=pad,
        eos_token_id=_first_id(cfg.get("eos_token_id"), default=1),
        decoder_start_token_id=int(start) if start is not None else pad,
    )
