"""Classify parameter tensors by their Hugging Face-style dotted names.

One rule set covers the naming of every family we load (our Flax models keep the checkpoint's
module names; only the leaf differs: `kernel`/`scale`/`embedding` here, `weight` in PyTorch):

  BERT / RoBERTa / MiniLM / ELECTRA / XLM-R  embeddings.word_embeddings, encoder.layer.N.attention.
                                             self.{query,key,value}, attention.output.dense,
                                             intermediate.dense, output.dense, *LayerNorm, pooler,
                                             cls.*, lm_head.*, classifier.*
  DistilBERT                                 transformer.layer.N.attention.{q,k,v,out}_lin,
                                             ffn.lin{1,2}, sa_layer_norm, output_layer_norm, vocab_*
  GPT-2                                      wte, wpe, h.N.attn.c_attn (fused q|k|v), attn.c_proj,
                                             mlp.c_fc, mlp.c_proj, ln_1, ln_2, ln_f, lm_head
  Llama / Mistral / Qwen2 / SmolLM           model.embed_tokens, layers.N.self_attn.{q,k,v,o}_proj,
                                             mlp.{gate,up,down}_proj, input_layernorm,
                                             post_attention_layernorm, model.norm, lm_head
  ALBERT                                     encoder.embedding_hidden_mapping_in, encoder.
                                             albert_layer_groups.G.albert_layers.I.attention.{query,
                                             key,value,dense,LayerNorm}, ffn, ffn_output,
                                             full_layer_layer_norm, pooler, mlm_head, sop_head
  T5                                         shared, {encoder,decoder}.block.N.layer.M.SelfAttention.
                                             {q,k,v,o}, EncDecAttention.*, DenseReluDense.{wi,wi_0,
                                             wi_1,wo}, layer_norm, final_layer_norm,
                                             relative_attention_bias
  XLNet                                      word_embedding, layer.N.rel_attn.{q,k,v,o} (r: the
                                             positional key projection, r_w/r_r/r_s_bias and
                                             seg_embed: relative_bias), ff.layer_{1,2},
                                             *layer_norm, mask_emb, lm_loss, sequence_summary,
                                             logits_proj

Roles (the `role` of a tensor): query, key, value, qkv (fused), attn_out, mlp_in, mlp_gate,
mlp_out, norm, token_embedding, position_embedding, type_embedding, relative_bias, embed_proj,
pooler, head, other. Components: embeddings, attention, mlp, norms, pooler, head, other.

Tensors of a block that several layers share (ALBERT's `albert_layer_groups.G.albert_layers.I`)
have no `layer`: their `shared` is (G, I), and the model config says which layers apply it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Leaf names: what the last segment of a parameter name says about the tensor.
_BIAS_LEAVES = {"bias", "beta"}
_GAIN_LEAVES = {"scale", "gamma"}
_WEIGHT_LEAVES = {"weight", "kernel", "embedding"}

_LAYER_CONTAINERS = {"layer", "layers", "h", "block", "blocks"}

_HEAD_SEGMENTS = {
    "lm_head",
    "cls",
    "classifier",
    "pre_classifier",
    "score",
    "qa_outputs",
    "vocab_transform",
    "vocab_projector",
    "vocab_layer_norm",
    "generator_lm_head",
    "sop_head",
    "generator_predictions",
    "discriminator_predictions",
    "lm_loss",
    "sequence_summary",
    "logits_proj",
}
_ATTENTION_SEGMENTS = {
    "attention",
    "attn",
    "self_attn",
    "self_attention",
    "selfattention",
    "encdecattention",
    "crossattention",
    "cross_attn",
    "encoder_attn",
    "rel_attn",
}
_CROSS_SEGMENTS = {"encdecattention", "crossattention", "cross_attn", "encoder_attn"}
_MLP_SEGMENTS = {
    "mlp",
    "ffn",
    "feed_forward",
    "densereludense",
    "intermediate",
    "output",
}

# Projection module name -> role, inside an attention module.
_ATTENTION_PROJECTIONS = {
    "query": "query",
    "q_proj": "query",
    "q": "query",
    "q_lin": "query",
    "wq": "query",
    "key": "key",
    "k_proj": "key",
    "k": "key",
    "k_lin": "key",
    "wk": "key",
    "value": "value",
    "v_proj": "value",
    "v": "value",
    "v_lin": "value",
    "wv": "value",
    "c_attn": "qkv",
    "qkv_proj": "qkv",
    "query_key_value": "qkv",
    "wqkv": "qkv",
    "in_proj": "qkv",
    "o_proj": "attn_out",
    "out_proj": "attn_out",
    "o": "attn_out",
    "out_lin": "attn_out",
    "c_proj": "attn_out",
    "wo": "attn_out",
    "dense": "attn_out",  # BERT: attention.output.dense
}
# Projection module name -> role, inside an MLP.
_MLP_PROJECTIONS = {
    "c_fc": "mlp_in",
    "fc1": "mlp_in",
    "fc_in": "mlp_in",
    "up_proj": "mlp_in",
    "wi": "mlp_in",
    "wi_1": "mlp_in",
    "lin1": "mlp_in",
    "dense_h_to_4h": "mlp_in",
    "ffn": "mlp_in",  # ALBERT
    "ffn_output": "mlp_out",
    "gate_proj": "mlp_gate",
    "wi_0": "mlp_gate",
    "c_proj": "mlp_out",
    "fc2": "mlp_out",
    "fc_out": "mlp_out",
    "down_proj": "mlp_out",
    "wo": "mlp_out",
    "lin2": "mlp_out",
    "dense_4h_to_h": "mlp_out",
    "layer_1": "mlp_in",  # XLNet ff
    "layer_2": "mlp_out",
}
_EMBEDDINGS = {
    "word_embeddings": "token_embedding",
    "word_embedding": "token_embedding",
    "wte": "token_embedding",
    "embed_tokens": "token_embedding",
    "embed_in": "token_embedding",
    "shared": "token_embedding",
    "position_embeddings": "position_embedding",
    "wpe": "position_embedding",
    "embed_positions": "position_embedding",
    "token_type_embeddings": "type_embedding",
    "embeddings_project": "embed_proj",
    "embedding_hidden_mapping_in": "embed_proj",  # ALBERT
}
_ROLE_COMPONENT = {
    "query": "attention",
    "key": "attention",
    "value": "attention",
    "qkv": "attention",
    "attn_out": "attention",
    "relative_bias": "attention",
    "mlp_in": "mlp",
    "mlp_gate": "mlp",
    "mlp_out": "mlp",
    "norm": "norms",
    "token_embedding": "embeddings",
    "position_embedding": "embeddings",
    "type_embedding": "embeddings",
    "embed_proj": "embeddings",
    "pooler": "pooler",
    "head": "head",
    "other": "other",
}
# Relative-position and segment parameters of an attention layer (T5, XLNet).
_RELATIVE = {"relative_attention_bias", "r_w_bias", "r_r_bias", "r_s_bias", "seg_embed"}
_NORM = re.compile(r"norm|^ln(_|$)", re.IGNORECASE)


@dataclass(frozen=True)
class ParamRole:
    """What one parameter tensor is.

    Attributes:
        component: embeddings, attention, mlp, norms, pooler, head or other.
        role: the matrix type (see the module docstring).
        leaf: weight (matrices, embeddings), gain (norm scale) or bias.
        layer: block index, None outside the blocks.
        stack: "decoder" for the decoder stack of an encoder-decoder, "" otherwise.
        cross: True for encoder-decoder cross-attention.
        shared: (group, index in the group) of a block that several layers apply (ALBERT),
            None otherwise.
    """

    component: str
    role: str
    leaf: str
    layer: int | None
    stack: str
    cross: bool
    shared: tuple[int, int] | None = None

    def to_dict(self) -> dict:
        """Return the fields as a JSON-ready dict (`shared` only when the block is shared)."""
        fields = asdict(self)
        if self.shared is None:
            del fields["shared"]
        else:
            fields["shared"] = list(self.shared)
        return fields


def _split(name: str) -> tuple[list[str], str]:
    """Return (module segments, leaf) of a dotted name; the leaf is '' when it is not a leaf name."""
    parts = name.split(".")
    if parts[-1] in _BIAS_LEAVES | _GAIN_LEAVES | _WEIGHT_LEAVES and len(parts) > 1:
        return parts[:-1], parts[-1]
    return parts, ""


def _layer(segments: list[str]) -> tuple[int | None, int]:
    """Return (block index, position of the container segment) or (None, -1)."""
    for i, part in enumerate(segments[:-1]):
        if part in _LAYER_CONTAINERS and segments[i + 1].isdigit():
            return int(segments[i + 1]), i
    return None, -1


def _shared(segments: list[str]) -> tuple[int, int] | None:
    """Return (group, index) of a tensor in ALBERT's shared blocks, else None."""
    for i in range(len(segments) - 3):
        group, inner = segments[i + 1], segments[i + 3]
        if (segments[i], segments[i + 2]) == ("albert_layer_groups", "albert_layers") and (
            group.isdigit() and inner.isdigit()
        ):
            return int(group), int(inner)
    return None


def _in_head(lower: list[str]) -> bool:
    """Tell whether lower-cased module segments lie inside a task head."""
    return any(s in _HEAD_SEGMENTS for s in lower) or bool(lower and lower[0].startswith("lm_head"))


def _role(segments: list[str]) -> str:
    """Return the role of a tensor from its module segments (leaf removed)."""
    lower = [s.lower() for s in segments]
    if _in_head(lower):
        return "norm" if any(_NORM.search(s) for s in segments) else "head"
    if "pooler" in lower:
        return "pooler"
    if any(_NORM.search(s) for s in segments):
        return "norm"
    if _RELATIVE & set(lower) or lower[-2:] == ["rel_attn", "r"]:
        return "relative_bias"
    for segment in reversed(lower):
        if segment in _EMBEDDINGS:
            return _EMBEDDINGS[segment]
    last = lower[-1] if lower else ""
    if any(s in _ATTENTION_SEGMENTS for s in lower) and last in _ATTENTION_PROJECTIONS:
        return _ATTENTION_PROJECTIONS[last]
    if last in _MLP_PROJECTIONS:
        return _MLP_PROJECTIONS[last]
    if last == "dense" and len(lower) > 1 and lower[-2] in _MLP_SEGMENTS:
        return "mlp_in" if lower[-2] == "intermediate" else "mlp_out"
    return "other"


def classify(name: str) -> ParamRole:
    """Classify a dotted parameter name (ours or the checkpoint's) into a ParamRole.

    Args:
        name: e.g. `encoder.layer.0.attention.self.query.kernel` or `h.3.mlp.c_fc.weight`.

    Returns:
        component, role, leaf kind, block index, stack and cross-attention flag.
    """
    segments, leaf = _split(name)
    role = _role(segments)
    layer, at = _layer(segments)
    lower = [s.lower() for s in segments]
    if leaf in _BIAS_LEAVES:
        kind = "bias"
    elif leaf in _GAIN_LEAVES or (role == "norm" and leaf in ("weight", "")):
        kind = "gain"
    elif role == "head" and leaf == "" and lower and lower[-1] == "bias":
        kind = "bias"
    else:
        kind = "weight"
    stack = "decoder" if layer is not None and "decoder" in lower[:at] else ""
    cross = any(s in _CROSS_SEGMENTS for s in lower)
    component = "head" if _in_head(lower) else _ROLE_COMPONENT[role]
    return ParamRole(component, role, kind, layer, stack, cross, _shared(segments))
