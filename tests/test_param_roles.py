"""Parameter classification on representative Hugging Face name lists of every family."""

import pytest

from generator.extract.param_roles import classify

# (name, role, component, leaf, layer); names as the checkpoints spell them.
BERT = [
    ("embeddings.word_embeddings.weight", "token_embedding", "embeddings", "weight", None),
    ("embeddings.position_embeddings.weight", "position_embedding", "embeddings", "weight", None),
    ("embeddings.token_type_embeddings.weight", "type_embedding", "embeddings", "weight", None),
    ("embeddings.LayerNorm.weight", "norm", "norms", "gain", None),
    ("embeddings.LayerNorm.bias", "norm", "norms", "bias", None),
    ("encoder.layer.0.attention.self.query.weight", "query", "attention", "weight", 0),
    ("encoder.layer.0.attention.self.query.bias", "query", "attention", "bias", 0),
    ("encoder.layer.0.attention.self.key.weight", "key", "attention", "weight", 0),
    ("encoder.layer.0.attention.self.value.weight", "value", "attention", "weight", 0),
    ("encoder.layer.0.attention.output.dense.weight", "attn_out", "attention", "weight", 0),
    ("encoder.layer.0.attention.output.LayerNorm.weight", "norm", "norms", "gain", 0),
    ("encoder.layer.11.intermediate.dense.weight", "mlp_in", "mlp", "weight", 11),
    ("encoder.layer.11.output.dense.weight", "mlp_out", "mlp", "weight", 11),
    ("encoder.layer.11.output.dense.bias", "mlp_out", "mlp", "bias", 11),
    ("encoder.layer.11.output.LayerNorm.bias", "norm", "norms", "bias", 11),
    ("pooler.dense.weight", "pooler", "pooler", "weight", None),
    ("cls.predictions.transform.dense.weight", "head", "head", "weight", None),
    ("cls.predictions.transform.LayerNorm.weight", "norm", "head", "gain", None),
    ("cls.predictions.decoder.weight", "head", "head", "weight", None),
    ("cls.predictions.bias", "head", "head", "bias", None),
    ("classifier.weight", "head", "head", "weight", None),
    # old TF-converted checkpoints
    ("encoder.layer.3.attention.output.LayerNorm.gamma", "norm", "norms", "gain", 3),
    ("encoder.layer.3.attention.output.LayerNorm.beta", "norm", "norms", "bias", 3),
]
# Our Flax names: the same modules, Flax leaves (kernel, scale, embedding).
OURS = [
    ("embeddings.word_embeddings.embedding", "token_embedding", "embeddings", "weight", None),
    ("embeddings.LayerNorm.scale", "norm", "norms", "gain", None),
    ("encoder.layer.1.attention.self.query.kernel", "query", "attention", "weight", 1),
    ("encoder.layer.1.attention.output.dense.kernel", "attn_out", "attention", "weight", 1),
    ("encoder.layer.1.intermediate.dense.kernel", "mlp_in", "mlp", "weight", 1),
    ("encoder.layer.1.output.dense.kernel", "mlp_out", "mlp", "weight", 1),
    ("encoder.layer.1.output.LayerNorm.scale", "norm", "norms", "gain", 1),
    ("pooler.dense.kernel", "pooler", "pooler", "weight", None),
]
ROBERTA = [
    ("roberta.embeddings.word_embeddings.weight", "token_embedding", "embeddings", "weight", None),
    ("roberta.encoder.layer.2.attention.self.key.bias", "key", "attention", "bias", 2),
    ("lm_head.dense.weight", "head", "head", "weight", None),
    ("lm_head.layer_norm.weight", "norm", "head", "gain", None),
    ("lm_head.decoder.weight", "head", "head", "weight", None),
    ("lm_head.bias", "head", "head", "bias", None),
]
DISTILBERT = [
    (
        "distilbert.embeddings.word_embeddings.weight",
        "token_embedding",
        "embeddings",
        "weight",
        None,
    ),
    ("distilbert.transformer.layer.4.attention.q_lin.weight", "query", "attention", "weight", 4),
    ("distilbert.transformer.layer.4.attention.k_lin.weight", "key", "attention", "weight", 4),
    ("distilbert.transformer.layer.4.attention.v_lin.weight", "value", "attention", "weight", 4),
    (
        "distilbert.transformer.layer.4.attention.out_lin.weight",
        "attn_out",
        "attention",
        "weight",
        4,
    ),
    ("distilbert.transformer.layer.4.sa_layer_norm.weight", "norm", "norms", "gain", 4),
    ("distilbert.transformer.layer.4.ffn.lin1.weight", "mlp_in", "mlp", "weight", 4),
    ("distilbert.transformer.layer.4.ffn.lin2.weight", "mlp_out", "mlp", "weight", 4),
    ("distilbert.transformer.layer.4.output_layer_norm.bias", "norm", "norms", "bias", 4),
    ("vocab_transform.weight", "head", "head", "weight", None),
    ("vocab_layer_norm.weight", "norm", "head", "gain", None),
    ("vocab_projector.bias", "head", "head", "bias", None),
]
ELECTRA = [
    ("electra.embeddings_project.weight", "embed_proj", "embeddings", "weight", None),
    ("electra.encoder.layer.0.attention.self.value.weight", "value", "attention", "weight", 0),
    ("discriminator_predictions.dense.weight", "head", "head", "weight", None),
    ("generator_predictions.LayerNorm.weight", "norm", "head", "gain", None),
    ("generator_lm_head.weight", "head", "head", "weight", None),
]
GPT2 = [
    ("wte.weight", "token_embedding", "embeddings", "weight", None),
    ("wpe.weight", "position_embedding", "embeddings", "weight", None),
    ("h.0.ln_1.weight", "norm", "norms", "gain", 0),
    ("h.0.ln_1.bias", "norm", "norms", "bias", 0),
    ("h.0.attn.c_attn.weight", "qkv", "attention", "weight", 0),
    ("h.0.attn.c_attn.bias", "qkv", "attention", "bias", 0),
    ("h.0.attn.c_proj.weight", "attn_out", "attention", "weight", 0),
    ("h.0.ln_2.weight", "norm", "norms", "gain", 0),
    ("h.0.mlp.c_fc.weight", "mlp_in", "mlp", "weight", 0),
    ("h.0.mlp.c_proj.weight", "mlp_out", "mlp", "weight", 0),
    ("transformer.h.7.mlp.c_proj.bias", "mlp_out", "mlp", "bias", 7),
    ("ln_f.weight", "norm", "norms", "gain", None),
    ("lm_head.weight", "head", "head", "weight", None),
]
LLAMA = [
    ("model.embed_tokens.weight", "token_embedding", "embeddings", "weight", None),
    ("model.layers.5.self_attn.q_proj.weight", "query", "attention", "weight", 5),
    ("model.layers.5.self_attn.q_proj.bias", "query", "attention", "bias", 5),  # Qwen2
    ("model.layers.5.self_attn.k_proj.weight", "key", "attention", "weight", 5),
    ("model.layers.5.self_attn.v_proj.weight", "value", "attention", "weight", 5),
    ("model.layers.5.self_attn.o_proj.weight", "attn_out", "attention", "weight", 5),
    ("model.layers.5.self_attn.q_norm.weight", "norm", "norms", "gain", 5),  # Qwen3
    ("model.layers.5.mlp.gate_proj.weight", "mlp_gate", "mlp", "weight", 5),
    ("model.layers.5.mlp.up_proj.weight", "mlp_in", "mlp", "weight", 5),
    ("model.layers.5.mlp.down_proj.weight", "mlp_out", "mlp", "weight", 5),
    ("model.layers.5.input_layernorm.weight", "norm", "norms", "gain", 5),
    ("model.layers.5.post_attention_layernorm.weight", "norm", "norms", "gain", 5),
    ("model.norm.weight", "norm", "norms", "gain", None),
    ("lm_head.weight", "head", "head", "weight", None),
]
T5 = [
    ("shared.weight", "token_embedding", "embeddings", "weight", None),
    ("encoder.block.0.layer.0.SelfAttention.q.weight", "query", "attention", "weight", 0),
    ("encoder.block.0.layer.0.SelfAttention.k.weight", "key", "attention", "weight", 0),
    ("encoder.block.0.layer.0.SelfAttention.v.weight", "value", "attention", "weight", 0),
    ("encoder.block.0.layer.0.SelfAttention.o.weight", "attn_out", "attention", "weight", 0),
    (
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "relative_bias",
        "attention",
        "weight",
        0,
    ),
    ("encoder.block.0.layer.0.layer_norm.weight", "norm", "norms", "gain", 0),
    ("encoder.block.2.layer.1.DenseReluDense.wi.weight", "mlp_in", "mlp", "weight", 2),
    ("encoder.block.2.layer.1.DenseReluDense.wi_0.weight", "mlp_gate", "mlp", "weight", 2),
    ("encoder.block.2.layer.1.DenseReluDense.wi_1.weight", "mlp_in", "mlp", "weight", 2),
    ("encoder.block.2.layer.1.DenseReluDense.wo.weight", "mlp_out", "mlp", "weight", 2),
    ("encoder.final_layer_norm.weight", "norm", "norms", "gain", None),
    ("decoder.block.1.layer.1.EncDecAttention.q.weight", "query", "attention", "weight", 1),
    ("decoder.block.1.layer.1.EncDecAttention.o.weight", "attn_out", "attention", "weight", 1),
    ("decoder.block.1.layer.2.DenseReluDense.wo.weight", "mlp_out", "mlp", "weight", 1),
    ("lm_head.weight", "head", "head", "weight", None),
]
_SHARED = "albert.encoder.albert_layer_groups.1.albert_layers.0."
ALBERT = [  # shared blocks have no layer (several layers apply them): see test_albert_shared
    ("albert.embeddings.word_embeddings.weight", "token_embedding", "embeddings", "weight", None),
    (
        "albert.encoder.embedding_hidden_mapping_in.weight",
        "embed_proj",
        "embeddings",
        "weight",
        None,
    ),
    (_SHARED + "attention.query.weight", "query", "attention", "weight", None),
    (_SHARED + "attention.key.bias", "key", "attention", "bias", None),
    (_SHARED + "attention.value.weight", "value", "attention", "weight", None),
    (_SHARED + "attention.dense.weight", "attn_out", "attention", "weight", None),
    (_SHARED + "attention.LayerNorm.weight", "norm", "norms", "gain", None),
    (_SHARED + "ffn.weight", "mlp_in", "mlp", "weight", None),
    (_SHARED + "ffn.bias", "mlp_in", "mlp", "bias", None),
    (_SHARED + "ffn_output.weight", "mlp_out", "mlp", "weight", None),
    (_SHARED + "full_layer_layer_norm.bias", "norm", "norms", "bias", None),
    ("albert.pooler.weight", "pooler", "pooler", "weight", None),
    ("predictions.dense.weight", "other", "other", "weight", None),
    ("sop_classifier.classifier.weight", "head", "head", "weight", None),
    ("sop_head.kernel", "head", "head", "weight", None),
    ("classifier.weight", "head", "head", "weight", None),
]
FAMILIES = {
    "albert": ALBERT,
    "bert": BERT,
    "ours": OURS,
    "roberta": ROBERTA,
    "distilbert": DISTILBERT,
    "electra": ELECTRA,
    "gpt2": GPT2,
    "llama": LLAMA,
    "t5": T5,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_name_gets_its_role(family):
    for name, role, component, leaf, layer in FAMILIES[family]:
        got = classify(name)
        assert (got.role, got.component, got.leaf, got.layer) == (role, component, leaf, layer), (
            name
        )


def test_t5_stacks_and_cross_attention():
    encoder = classify("encoder.block.0.layer.0.SelfAttention.q.weight")
    decoder = classify("decoder.block.0.layer.0.SelfAttention.q.weight")
    cross = classify("decoder.block.0.layer.1.EncDecAttention.k.weight")
    assert (encoder.stack, encoder.cross) == ("", False)
    assert (decoder.stack, decoder.cross) == ("decoder", False)
    assert (cross.stack, cross.cross, cross.role) == ("decoder", True, "key")
    # BERT's masked-LM head has a `decoder` module but no decoder stack.
    assert classify("cls.predictions.decoder.weight").stack == ""


def test_unknown_names_fall_back_to_other():
    assert classify("some.custom.tensor").role == "other"
    assert classify("some.custom.tensor").component == "other"


def test_albert_shared_blocks_are_named_by_group_and_index():
    shared = classify("encoder.albert_layer_groups.1.albert_layers.0.attention.query.kernel")
    assert shared.shared == (1, 0) and shared.layer is None
    assert shared.to_dict()["shared"] == [1, 0]
    plain = classify("encoder.layer.1.attention.self.query.kernel")
    assert plain.shared is None and "shared" not in plain.to_dict()  # other families unchanged
    assert classify("encoder.embedding_hidden_mapping_in.kernel").shared is None
