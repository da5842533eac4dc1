"""Full-size architectures build abstractly (jax.eval_shape: no memory), and memory estimates."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from generator.attribution.objectives import ObjectiveInputs
from generator.extract.gradients import make_gradient_step
from generator.models import load_model, parse_config
from generator.models.layers import extraction_layers
from generator.models.memory import GIB, estimate_memory, gradient_step_bytes, parameter_count
from generator.models.registry import family_for

FIXTURES = Path(__file__).parent / "fixtures"

BERT_BASE = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 50257,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
}
LLAMA_7B = {  # Llama-2-7b
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}
MISTRAL_7B = {
    "model_type": "mistral",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "sliding_window": 4096,
    "rope_theta": 10000.0,
}
ALBERT_BASE_V2 = {  # albert-base-v2: one shared block applied 12 times
    "model_type": "albert",
    "vocab_size": 30000,
    "embedding_size": 128,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_hidden_groups": 1,
    "inner_group_num": 1,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu_new",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}

XLNET_BASE = {  # xlnet-base-cased, written by hand (no hub access)
    "model_type": "xlnet",
    "vocab_size": 32000,
    "d_model": 768,
    "n_layer": 12,
    "n_head": 12,
    "d_inner": 3072,
    "ff_activation": "gelu",
    "untie_r": True,
    "attn_type": "bi",
}

# (config dict, heads, parameters of the published checkpoint)
FULL_SIZE = {
    "bert-base": (BERT_BASE, (), 109_482_240),
    "gpt2": (GPT2, ("causal-lm",), 124_439_808),
    "llama-2-7b": (LLAMA_7B, ("causal-lm",), 6_738_415_616),
    "mistral-7b": (MISTRAL_7B, ("causal-lm",), 7_241_732_096),
    # sum(p.numel()) of transformers 5.23 AlbertModel / AlbertForMaskedLM (no pooler, tied)
    "albert-base-v2": (ALBERT_BASE_V2, (), 11_683_584),
    "albert-base-v2-mlm": (ALBERT_BASE_V2, ("masked-lm",), 11_221_680),
    # XLNetModel / XLNetLMHeadModel of transformers 5.23 on this config (the LM head adds the
    # 32,000 lm_loss biases; its weight is the tied word embedding)
    "xlnet-base-cased": (XLNET_BASE, (), 116_718_336),
    "xlnet-base-cased-lm": (XLNET_BASE, ("permutation-lm",), 116_750_336),
}


def abstract_model(cfg: dict, heads: tuple[str, ...], dtype: str = "float32"):
    """Build the model of a config dict with jax.eval_shape: shapes only, nothing allocated."""
    config = parse_config(cfg)
    pooler = config.family == "bert" or (config.family == "albert" and not heads)
    config = dataclasses.replace(config, heads=heads, with_pooler=pooler)
    family = family_for(config.model_type)
    return config, nnx.eval_shape(lambda: family.build(config, dtype=dtype, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_builds_without_allocating(name):
    cfg, heads, published = FULL_SIZE[name]
    start = time.perf_counter()
    config, model = abstract_model(cfg, heads)
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert leaves and all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)
    count = sum(int(np.prod(leaf.shape)) for leaf in leaves)
    assert count == published
    assert parameter_count(config) == published
    assert time.perf_counter() - start < 20


def test_full_size_forward_shapes():
    """The forward pass of a full-size decoder traces abstractly with the right probe shapes."""
    config, model = abstract_model(MISTRAL_7B, ("causal-lm",), dtype="bfloat16")
    graphdef, state = nnx.split(model)
    ids = jax.ShapeDtypeStruct((2, 16), np.int32)
    out = jax.eval_shape(lambda s, i, m: nnx.merge(graphdef, s)(i, m), state, ids, ids)
    assert out["hidden_states"].shape == (2, 33, 16, 4096)
    assert out["attentions"].shape == (2, 32, 32, 16, 16)
    assert out["keys"].shape == (2, 32, 32, 16, 128)  # per query head
    assert out["logits"].shape == (2, 16, 32000)
    assert out["hidden_states"].dtype == np.dtype("bfloat16")
    assert config.sliding_windows == (4096,) * 32


def test_full_size_xlnet_forward_shapes():
    """xlnet-base-cased traces abstractly: content-stream probes, and the query-stream target."""
    _, model = abstract_model(XLNET_BASE, ("permutation-lm",))
    graphdef, state = nnx.split(model)
    ids = jax.ShapeDtypeStruct((2, 16), np.int32)
    target = jax.ShapeDtypeStruct((2,), np.int32)
    out = jax.eval_shape(
        lambda s, i, m, t: nnx.merge(graphdef, s)(i, m, target_position=t), state, ids, ids, target
    )
    assert out["hidden_states"].shape == (2, 13, 16, 768)
    assert out["attentions"].shape == (2, 12, 12, 16, 16)
    assert out["queries"].shape == (2, 12, 12, 16, 64)
    assert out["mlp_activations"].shape == (2, 12, 16, 3072)
    assert out["logits"].shape == (2, 16, 32000)
    assert out["target_logits"].shape == (2, 32000)


@pytest.mark.parametrize(
    "name",
    [
        "tiny-bert",
        "tiny-bert-pretraining",
        "tiny-bert-cls",
        "tiny-roberta-cls",
        "tiny-distilbert-mlm",
        "tiny-distilbert-cls",
        "tiny-electra",
        "tiny-electra-cls",
        "tiny-gpt2",
        "tiny-llama",
        "tiny-llama-mqa",
        "tiny-llama-cls",
        "tiny-qwen2",
        "tiny-albert",
        "tiny-albert-mlm",
        "tiny-albert-pretraining",
        "tiny-albert-cls",
        "tiny-xlnet",
        "tiny-xlnet-cls",
    ],
)
def test_parameter_count_matches_the_loaded_model(name):
    loaded = load_model(FIXTURES / name)
    leaves = jax.tree.leaves(nnx.state(loaded.model, nnx.Param))
    assert parameter_count(loaded.config) == sum(int(np.prod(leaf.shape)) for leaf in leaves)


# sum(p.numel()) of each fixture loaded in PyTorch transformers 5.23 (tied weights once)
TORCH_PARAMETERS = {
    "tiny-albert": 27_968,
    "tiny-albert-mlm": 27_984,
    "tiny-albert-pretraining": 46_194,
    "tiny-albert-cls": 28_067,
}


@pytest.mark.parametrize("name", sorted(TORCH_PARAMETERS))
def test_albert_parameter_counts_are_the_checkpoints(name):
    loaded = load_model(FIXTURES / name)
    leaves = jax.tree.leaves(nnx.state(loaded.model, nnx.Param))
    assert sum(int(np.prod(leaf.shape)) for leaf in leaves) == TORCH_PARAMETERS[name]


def test_albert_shares_one_block_over_every_layer():
    """albert-base-v2 holds one block's weights; the forward pass applies it 12 times."""
    config, model = abstract_model(ALBERT_BASE_V2, ())
    assert config.n_layers == 12 and config.n_weight_blocks == 1
    assert config.layer_blocks == (0,) * 12
    assert len(model.encoder.albert_layer_groups) == 1
    assert all(block is model.blocks()[0] for block in model.blocks())
    graphdef, state = nnx.split(model)
    ids = jax.ShapeDtypeStruct((2, 16), np.int32)
    out = jax.eval_shape(lambda s, i, m: nnx.merge(graphdef, s)(i, m), state, ids, ids)
    assert out["hidden_states"].shape == (2, 13, 16, 768)
    assert out["attentions"].shape == (2, 12, 12, 16, 16)
    assert out["mlp_activations"].shape == (2, 12, 16, 3072)
    assert out["pooler_output"].shape == (2, 768)


def test_memory_estimate_scales():
    config, _ = abstract_model(LLAMA_7B, ("causal-lm",))
    small = estimate_memory(config, batch=8, tokens=128)
    assert small.parameter_bytes == 6_738_415_616 * 4
    assert 25 * GIB < small.parameter_bytes < 26 * GIB
    double = estimate_memory(config, batch=16, tokens=128)
    assert double.corpus_batch_bytes == pytest.approx(2 * small.corpus_batch_bytes, rel=0.01)
    split = estimate_memory(config, batch=16, tokens=128, devices=2)
    assert split.corpus_batch_bytes == small.corpus_batch_bytes
    assert split.parameter_bytes == small.parameter_bytes  # replicated
    long = estimate_memory(config, batch=8, tokens=512)
    assert long.corpus_batch_bytes > 4 * small.corpus_batch_bytes  # attention is quadratic
    # the corpus step holds at least every layer's hidden states and MLP units at once
    live = (config.n_layers + 1) * config.d_model + config.n_layers * config.d_mlp
    assert small.corpus_batch_bytes > 8 * 128 * 4 * live
    bf16 = estimate_memory(config, batch=8, tokens=128, dtype="bfloat16")
    assert bf16.corpus_batch_bytes < small.corpus_batch_bytes
    line = small.summary()
    assert "\n" not in line and "GiB" in line and "8x128" in line


def gradient_step_memory(config, model, task: str, rows: int, tokens: int) -> int:
    """The compiled parameter-gradient step's float32 sum and temporaries, in bytes."""
    graphdef, params = nnx.split(model)
    ints = lambda *shape: jax.ShapeDtypeStruct(shape, np.int32)  # noqa: E731
    inputs = ObjectiveInputs(
        ints(rows, tokens),
        ints(rows, tokens),
        ints(rows),
        ints(rows),
        jax.ShapeDtypeStruct((rows, 1), np.float32),
        ints(rows),
    )
    total = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, np.float32), params)
    step = make_gradient_step(task, graphdef).lower(params, total, inputs, ints())
    memory = step.compile().memory_analysis()
    return memory.output_size_in_bytes + memory.temp_size_in_bytes


@pytest.mark.parametrize(
    "name, task", [("gpt2", "causal-lm"), ("llama-2-7b", "causal-lm"), ("bert-base", "masked-lm")]
)
def test_gradient_step_memory_is_within_its_estimate_scanned_or_not(name, task):
    """What the gradient step holds beside the parameters fits `gradient_step_bytes` (within
    1.25x), and extractions that scan their layers (accelerators) still unroll it: scanned,
    its temporaries stacked the parameters and their gradients (Llama-2-7B: 80 GB more)."""
    cfg, heads, _ = FULL_SIZE[name]
    config, model = abstract_model(cfg, heads or ("masked-lm",))
    rows, tokens = 32, 24  # the gradient sample of the default card's builds
    held = {}
    for platform in ("cpu", "gpu"):  # the CPU's extraction unrolls the layers, a GPU's scans
        with extraction_layers(platform):
            held[platform] = gradient_step_memory(config, model, task, rows, tokens)
    assert held["gpu"] == held["cpu"]
    count = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(nnx.state(model, nnx.Param)))
    estimate = gradient_step_bytes(config, count, tokens)
    assert held["cpu"] <= estimate <= 1.25 * held["cpu"]
