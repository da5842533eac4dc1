"""The staged forward pass (embed_stage, layer_stage, output_stage) and the scanned layers.

Running the layers in two pieces, split at every layer, must give the full forward pass; the
layers of one structure are traced once (the traced program does not grow with depth).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from generator.models.layers import layer_runs, with_input
from generator.models.loading import load_model
from generator.models.registry import family_for, parse_config

FIXTURES = Path(__file__).parent / "fixtures"
STAGED = [
    "tiny-bert",
    "tiny-albert",
    "tiny-electra",
    "tiny-distilbert-cls",
    "tiny-roberta-cls",
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-qwen2",
    "tiny-xlnet",
]


def inputs(vocab: int, n_layers: int, n_heads: int):
    """Return ids and a right-padded mask [2, 7] and a head mask [layer, head] with zeros."""
    rng = np.random.default_rng(0)
    ids = jnp.asarray(rng.integers(5, vocab, (2, 7)), jnp.int32)
    mask = jnp.asarray([[1] * 7, [1] * 5 + [0] * 2], jnp.int32)
    head_mask = jnp.asarray(rng.integers(0, 2, (n_layers, n_heads)), jnp.float32)
    return ids, mask, head_mask


def split_run(model, ids, mask, head_mask, split: int) -> dict:
    """Run layers 0..split-1, then split..L-1, and assemble the outputs."""
    x, ctx = model.embed_stage(ids, mask)
    low, hidden_low, probes_low = model.layer_stage(x, ctx, head_mask=head_mask, stop=split)
    out, hidden_high, probes_high = model.layer_stage(low, ctx, head_mask=head_mask, start=split)
    hidden = with_input(x, jnp.concatenate([hidden_low, hidden_high], axis=1))
    probes = {k: jnp.concatenate([probes_low[k], probes_high[k]], axis=1) for k in probes_low}
    return model.output_stage(out, ctx, hidden, probes)


@pytest.mark.parametrize("name", STAGED)
def test_split_layer_stages_equal_the_full_forward(name):
    model = load_model(FIXTURES / name).model
    config = model.config
    ids, mask, head_mask = inputs(config.vocab_size, config.n_layers, config.n_heads)
    full = model(ids, mask, head_mask=head_mask)
    for split in range(1, config.n_layers):
        staged = split_run(model, ids, mask, head_mask, split)
        assert list(staged) == list(full)
        for key, value in full.items():
            np.testing.assert_allclose(staged[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_layer_stage_rejects_an_empty_range():
    model = load_model(FIXTURES / "tiny-bert").model
    x, ctx = model.embed_stage(jnp.ones((1, 3), jnp.int32), jnp.ones((1, 3), jnp.int32))
    with pytest.raises(ValueError, match="not within"):
        model.layer_stage(x, ctx, start=1, stop=1)


def test_runs_group_identical_layers():
    bert = load_model(FIXTURES / "tiny-bert").model
    assert layer_runs(bert.blocks()) == [(0, bert.config.n_layers)]
    t5 = load_model(FIXTURES / "tiny-t5").model
    n = len(t5.encoder.block)
    assert layer_runs(list(t5.encoder.block)) == [(0, 1), (1, n)]  # relative bias in block 0
    qwen = load_model(FIXTURES / "tiny-qwen2").model
    keys = qwen.layer_keys()
    assert len(set(keys)) == 2  # full and sliding attention layers never share a run
    assert len(layer_runs(qwen.blocks(), keys)) == 2


def traced_size(hf_config: dict) -> int:
    """Return the number of equations in the traced forward pass of a random-init model."""
    family = family_for(hf_config["model_type"])
    model = family.build(parse_config(hf_config), rngs=nnx.Rngs(0))
    ids = jnp.ones((1, 4), jnp.int32)
    return len(jax.make_jaxpr(lambda i: model(i, i)["hidden_states"])(ids).eqns)


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2", "tiny-llama", "tiny-xlnet"])
def test_traced_program_does_not_grow_with_depth(name):
    import json

    hf_config = json.loads((FIXTURES / name / "config.json").read_text())
    depth = next(k for k in ("num_hidden_layers", "n_layer", "n_layers") if k in hf_config)
    sizes = [traced_size({**hf_config, depth: n}) for n in (2, 5)]
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("name", ["tiny-albert", "tiny-qwen2"])
def test_unrolled_layers_give_the_scanned_outputs(name):
    from generator.models.layers import unrolled_layers

    model = load_model(FIXTURES / name).model
    config = model.config
    ids, mask, head_mask = inputs(config.vocab_size, config.n_layers, config.n_heads)
    scanned = model(ids, mask, head_mask=head_mask)
    with unrolled_layers():
        unrolled = model(ids, mask, head_mask=head_mask)
    assert list(unrolled) == list(scanned)
    for key, value in scanned.items():
        np.testing.assert_allclose(unrolled[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_unrolled_trace_traces_each_distinct_block_once():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from generator.models.layers import scan_blocks, unrolled_layers

    rngs = nnx.Rngs(0)
    blocks = [nnx.Linear(3, 3, rngs=rngs) for _ in range(4)] + [nnx.Linear(3, 3, rngs=rngs)]
    keys = [None] * 4 + ["last"]  # a different key: a second distinct block
    traced = []

    def step(block, carry, x, key):
        traced.append(key)
        out = jnp.tanh(block(carry)) * x
        return out, (out, {"norm": jnp.sum(out**2, axis=-1)})

    carry, xs = jnp.ones((2, 3)), jnp.arange(1.0, 6.0)

    def run(carry, xs):
        with unrolled_layers():
            return scan_blocks(carry, blocks, step, xs=xs, keys=keys)

    eager = run(carry, xs)
    assert len(traced) == 5  # eager: every block runs on concrete values
    traced.clear()
    # forward and reverse mode through the unrolled layers: one trace per distinct block
    program = jax.jit(jax.value_and_grad(lambda c: jnp.sum(run(c, xs)[0])))
    value, grad = program(carry)
    assert traced == [None, "last"]
    expected = carry
    for block, x in zip(blocks, xs, strict=True):
        expected = jnp.tanh(block(expected)) * x
    np.testing.assert_allclose(eager[0], expected, rtol=1e-6)
    np.testing.assert_allclose(value, jnp.sum(expected), rtol=1e-6)
    assert eager[1][0].shape == (2, 5, 3) and eager[1][1]["norm"].shape == (2, 5)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
