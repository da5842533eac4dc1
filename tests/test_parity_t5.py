"""Parity of our Flax T5 with PyTorch `transformers` T5ForConditionalGeneration.

Reference outputs come from scripts/make_fixtures_t5.py (two tiny random configs: v1.0 ReLU
with a tied head, v1.1 gated-GELU with an untied head); this test needs no PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from generator.models import load_model
from generator.models.t5 import generate_greedy, greedy_decode, relative_position_bucket

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-4
VARIANTS = ["tiny-t5", "tiny-t5-v1_1"]
KEYS = [
    "encoder_hidden_states",
    "encoder_attentions",
    "decoder_hidden_states",
    "decoder_attentions",
    "cross_attentions",
    "logits",
]

_CACHE: dict[str, tuple] = {}


def run(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], object]:
    """Return (reference arrays, our outputs as numpy, loaded model) for a variant, cached."""
    if name not in _CACHE:
        ref = dict(np.load(FIXTURES / "parity" / f"{name}.npz"))
        loaded = load_model(FIXTURES / name)
        out = loaded.model(
            ref["input_ids"],
            ref["attention_mask"],
            ref["decoder_input_ids"],
            ref["decoder_attention_mask"],
        )
        _CACHE[name] = ref, {k: np.asarray(v) for k, v in out.items()}, loaded
    return _CACHE[name]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("key", KEYS)
def test_matches_transformers(name, key, record_property):
    ref, out, _ = run(name)
    assert out[key].shape == ref[key].shape
    diff = np.abs(out[key] - ref[key])
    record_property(f"max_abs_diff_{name}_{key}", float(diff.max()))
    print(f"{name} {key}: max abs diff {diff.max():.3g}")
    assert diff.max() <= TOL, f"{key}: {diff.max():.3g}"


def test_variants_differ_where_they_should():
    _, _, tied = run("tiny-t5")
    _, _, untied = run("tiny-t5-v1_1")
    assert tied.model.lm_head is None and tied.config.scale_decoder_outputs
    assert not tied.config.gated and tied.config.activation == "relu"
    assert untied.model.lm_head is not None and not untied.config.scale_decoder_outputs
    assert untied.config.gated and untied.config.activation == "gelu_new"
    assert untied.config.n_heads * untied.config.d_head != untied.config.d_model
    assert untied.config.n_decoder_layers != untied.config.n_layers


@pytest.mark.parametrize("name", VARIANTS)
def test_greedy_decoding_matches_generate(name):
    ref, _, loaded = run(name)
    steps = ref["greedy_ids"].shape[1] - 1
    decode = nnx.jit(generate_greedy, static_argnums=3)
    ids = decode(loaded.model, ref["input_ids"], ref["attention_mask"], steps)
    np.testing.assert_array_equal(np.asarray(ids), ref["greedy_ids"])


@pytest.mark.parametrize("name", VARIANTS)
def test_masks_rows_and_causality(name):
    ref, out, _ = run(name)
    enc_mask = ref["attention_mask"].astype(bool)
    dec_mask = ref["decoder_attention_mask"].astype(bool)
    for key in ("encoder_attentions", "decoder_attentions", "cross_attentions"):
        np.testing.assert_allclose(out[key].sum(-1), 1.0, atol=1e-5)
    hidden_keys = ~enc_mask[:, None, None, None, :]
    assert np.all(np.where(hidden_keys, out["encoder_attentions"], 0.0) == 0.0)
    assert np.all(np.where(hidden_keys, out["cross_attentions"], 0.0) == 0.0)
    n = dec_mask.shape[1]
    future = np.triu(np.ones((n, n), bool), k=1)
    assert np.all(out["decoder_attentions"][..., future] == 0.0)
    assert np.all(np.where(~dec_mask[:, None, None, None, :], out["decoder_attentions"], 0) == 0)


@pytest.mark.parametrize("name", VARIANTS)
def test_cross_queries_and_keys_reproduce_cross_attention(name):
    """Cross-attention has no position bias and no 1/sqrt(d) scaling: softmax(q k^T + mask)."""
    ref, out, _ = run(name)
    q, k = out["cross_queries"], out["cross_keys"]  # [batch, layer, head, target|token, d_head]
    scores = np.einsum("blhqd,blhkd->blhqk", q.astype(np.float64), k.astype(np.float64))
    visible = ref["attention_mask"].astype(bool)[:, None, None, None, :]
    scores = np.where(visible, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, out["cross_attentions"], atol=1e-5)


def test_position_bias_is_shared_from_the_first_block():
    _, _, loaded = run("tiny-t5")
    blocks = loaded.model.encoder.block
    assert blocks[0].layer[0].SelfAttention.relative_attention_bias is not None
    assert all(b.layer[0].SelfAttention.relative_attention_bias is None for b in blocks[1:])
    decoder = loaded.model.decoder.block
    assert all(b.layer[1].EncDecAttention.relative_attention_bias is None for b in decoder)


def test_relative_buckets_match_transformers():
    ref = dict(np.load(FIXTURES / "parity" / "t5-buckets.npz"))
    relative = jnp.asarray(ref.pop("relative_position"))
    assert len(ref) == 6
    for key, expected in ref.items():
        _, buckets, distance, direction = key.split("_")
        ours = relative_position_bucket(relative, direction == "bi", int(buckets), int(distance))
        np.testing.assert_array_equal(np.asarray(ours), expected, err_msg=key)


def test_causal_buckets_put_every_future_key_in_bucket_zero():
    relative = jnp.arange(1, 50)
    assert np.all(np.asarray(relative_position_bucket(relative, False, 32, 128)) == 0)


def test_greedy_loop_stops_at_eos_and_pads_finished_rows():
    """A fake decoder: row 0 emits eos (1) at step 2, row 1 never; tokens are 5 + step."""
    vocab, eos, pad, start = 8, 1, 0, 0
    calls = []

    def next_logits(ids):
        calls.append(ids.shape)
        batch, length = ids.shape
        steps = jnp.arange(length)[None, :]
        tokens = jnp.where((jnp.arange(batch)[:, None] == 0) & (steps == 2), eos, 5 + steps % 3)
        return jax.nn.one_hot(tokens, vocab)

    ids = jax.jit(lambda: greedy_decode(next_logits, 2, 6, start, eos, pad_id=pad))()
    np.testing.assert_array_equal(np.asarray(ids), [[0, 5, 6, 1, 0, 0, 0], [0, 5, 6, 7, 5, 6, 7]])


def test_greedy_loop_ends_early_when_every_row_is_done():
    counter = {"steps": 0}

    def next_logits(ids):
        return jax.nn.one_hot(jnp.full(ids.shape, 1), 4)  # eos at once

    def host_count(step):
        counter["steps"] += 1
        return step

    def counted(ids):
        jax.debug.callback(host_count, 0)
        return next_logits(ids)

    ids = greedy_decode(counted, 3, 10, 0, 1, pad_id=0)
    jax.effects_barrier()
    np.testing.assert_array_equal(np.asarray(ids)[:, :2], [[0, 1]] * 3)
    assert np.all(np.asarray(ids)[:, 2:] == 0)
    assert counter["steps"] == 1


def test_bfloat16_compute_is_close():
    ref, _, _ = run("tiny-t5-v1_1")
    loaded = load_model(FIXTURES / "tiny-t5-v1_1", dtype="bfloat16")
    forward = nnx.jit(lambda m, *args: m(*args))
    out = forward(
        loaded.model,
        ref["input_ids"],
        ref["attention_mask"],
        ref["decoder_input_ids"],
        ref["decoder_attention_mask"],
    )
    assert out["decoder_hidden_states"].dtype == jnp.bfloat16
    assert out["cross_attentions"].dtype == jnp.float32
    diff = np.abs(np.asarray(out["cross_attentions"]) - ref["cross_attentions"]).max()
    assert diff < 0.05
