"""Per-head attention metrics on constructed attention tensors: hand-computed values and a
loop-per-query numpy reference (uniform, one-hot, diagonal, causal, padded, cross-attention)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from head_metrics_reference import NAMES, reference_metrics

from generator.extract.head_metrics import (
    METRICS,
    head_metrics,
    is_causal,
    is_encoder_decoder,
    key_visibility,
)
from generator.extract.layer_loop import mask_groups


def run(attn, mask, special=None, causal=False, key_mask=None):
    """Metrics of a [batch, layer, head, q, k] tensor as {name: [batch, layer, head]}."""
    attn = np.asarray(attn, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.int32)
    key_mask = mask if key_mask is None else np.asarray(key_mask, dtype=np.int32)
    special = np.zeros(key_mask.shape, bool) if special is None else np.asarray(special, bool)
    visible = key_visibility(jnp.asarray(mask), jnp.asarray(key_mask), causal=causal)
    out = np.asarray(head_metrics(jnp.asarray(attn), jnp.asarray(mask), visible, special))
    assert out.dtype == np.float32 and out.shape == (*attn.shape[:3], len(METRICS))
    return {name: out[..., i] for i, name in enumerate(METRICS)}


def one(values):
    """The single [1, 1, 1] value of a metric, as a float."""
    return float(np.asarray(values).reshape(-1)[0])


def expect(metrics, **values):
    for name, value in values.items():
        if value is None:
            assert math.isnan(one(metrics[name])), name
        else:
            assert one(metrics[name]) == pytest.approx(value, abs=1e-6), name


def test_metric_names_match_the_reference():
    assert tuple(METRICS) == NAMES


def test_uniform_attention():
    attn = np.full((1, 1, 1, 4, 4), 0.25)
    m = run(attn, [[1, 1, 1, 1]], special=[[1, 0, 0, 1]])
    expect(
        m,
        entropy=math.log(4),
        normalized_entropy=1.0,
        kl_uniform=0.0,
        sparsity=0.0,
        nonzero_mean=4,
        nonzero_max=4,
        distance=(1.5 + 1 + 1 + 1.5) / 4,
        first_token=0.25,
        special=0.5,
        previous=0.25,
        next=0.25,
        self=0.25,
        max_weight=0.25,
    )


def test_one_hot_on_the_first_token():
    attn = np.zeros((1, 1, 1, 4, 4))
    attn[..., 0] = 1.0
    m = run(attn, [[1, 1, 1, 1]], special=[[1, 0, 0, 1]])
    expect(
        m,
        entropy=0.0,
        normalized_entropy=0.0,
        kl_uniform=math.log(4),
        sparsity=0.75,
        nonzero_mean=1,
        nonzero_max=1,
        distance=(0 + 1 + 2 + 3) / 4,
        first_token=1.0,
        special=1.0,
        previous=1 / 3,  # only query 1's previous token is key 0
        next=0.0,
        self=0.25,  # only query 0 attends to itself
        max_weight=1.0,
    )


def test_diagonal_attention():
    attn = np.eye(5)[None, None, None]
    m = run(attn, [[1] * 5])
    expect(m, entropy=0.0, distance=0.0, self=1.0, previous=0.0, next=0.0, first_token=0.2)
    expect(m, max_weight=1.0, sparsity=0.8, nonzero_mean=1, special=0.0)


def test_previous_token_head():
    attn = np.zeros((1, 1, 1, 4, 4))
    attn[0, 0, 0, 0, 0] = 1.0
    for q in range(1, 4):
        attn[0, 0, 0, q, q - 1] = 1.0
    m = run(attn, [[1] * 4])
    expect(m, previous=1.0, next=0.0, self=0.25, distance=0.75)


def test_causal_uniform_attention():
    n = 4
    attn = np.zeros((1, 1, 1, n, n))
    for q in range(n):
        attn[0, 0, 0, q, : q + 1] = 1.0 / (q + 1)
    m = run(attn, [[1] * n], causal=True)
    expect(
        m,
        entropy=sum(math.log(q + 1) for q in range(n)) / n,
        normalized_entropy=1.0,  # query 0 sees one key only and is left out
        kl_uniform=0.0,
        sparsity=0.0,
        nonzero_mean=(1 + 2 + 3 + 4) / 4,
        nonzero_max=4,
        distance=sum(q / 2 for q in range(n)) / n,
        first_token=sum(1 / (q + 1) for q in range(n)) / n,
        previous=sum(1 / (q + 1) for q in range(1, n)) / (n - 1),
        next=None,  # no query of a causal head can see its next token
        self=sum(1 / (q + 1) for q in range(n)) / n,
    )


def test_causal_visibility_hides_future_and_padding():
    visible = np.asarray(key_visibility(jnp.asarray([[1, 1, 1, 0]]), causal=True))[0]
    expected = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(visible, expected)
    bidirectional = np.asarray(key_visibility(jnp.asarray([[1, 1, 0]])))[0]
    np.testing.assert_array_equal(bidirectional, np.array([[1, 1, 0]] * 3, bool))


def test_future_weight_of_a_causal_model_is_ignored():
    """Weight a causal query puts on invisible keys is not counted anywhere."""
    attn = np.full((1, 1, 1, 3, 3), 1 / 3)
    m = run(attn, [[1, 1, 1]], causal=True)
    expect(m, next=None, nonzero_mean=2.0, self=1 / 3)


def test_padding_changes_nothing():
    rng = np.random.default_rng(0)
    n, width = 3, 6
    logits = rng.normal(size=(1, 2, 3, n, n))
    real = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    padded = rng.uniform(size=(1, 2, 3, width, width))  # garbage on padded queries
    padded[..., :n, :] = 0.0  # real queries put no weight on padded keys
    padded[..., :n, :n] = real
    special = [[1, 0, 1, 0, 0, 0]]
    unpadded = run(real, [[1] * n], special=[special[0][:n]])
    with_padding = run(padded, [[1] * n + [0] * (width - n)], special=special)
    for name in METRICS:
        np.testing.assert_allclose(with_padding[name], unpadded[name], rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_random_batches_match_the_numpy_reference(causal):
    rng = np.random.default_rng(1 if causal else 2)
    batch, layers, heads, width = 3, 2, 3, 7
    lengths = [7, 4, 1]
    mask = np.array([[1] * n + [0] * (width - n) for n in lengths])
    visible = mask[:, None, :].astype(bool)
    if causal:
        visible = visible & np.tril(np.ones((width, width), bool))[None]
    logits = rng.normal(scale=3.0, size=(batch, layers, heads, width, width))
    logits = np.where(visible[:, None, None], logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    weights = np.nan_to_num(weights)
    special = (rng.uniform(size=(batch, width)) < 0.3) & (mask > 0)
    got = run(weights, mask, special=special, causal=causal)
    want = reference_metrics(weights, mask, mask, special, causal)
    for i, name in enumerate(METRICS):
        np.testing.assert_allclose(got[name], want[..., i], rtol=2e-5, atol=2e-6, err_msg=name)
    # A one-token text has no previous/next token and no normalised entropy.
    assert np.isnan(got["previous"][2]).all() and np.isnan(got["normalized_entropy"][2]).all()


def test_cross_attention_shapes_match_the_reference():
    rng = np.random.default_rng(3)
    query_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    key_mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    weights = rng.uniform(size=(2, 1, 2, 4, 6)) * key_mask[:, None, None, None, :]
    weights /= weights.sum(-1, keepdims=True)
    got = run(weights, query_mask, key_mask=key_mask)
    want = reference_metrics(weights, query_mask, key_mask, np.zeros((2, 6), bool), False)
    for i, name in enumerate(METRICS):
        np.testing.assert_allclose(got[name], want[..., i], rtol=2e-5, atol=2e-6, err_msg=name)


def windowed_metrics(seed: int, mask: np.ndarray, windows: tuple, visible, heads: int = 2):
    """Metrics of random maps that respect each layer's window, and the numpy reference's."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(size=(mask.shape[0], len(windows), heads, *mask.shape[1:2] * 2))
    weights *= np.stack([np.asarray(v) for v in visible], axis=1)[:, :, None]  # zero outside
    weights /= np.maximum(weights.sum(-1, keepdims=True), 1e-12)
    special = np.zeros(mask.shape, bool)
    got = np.asarray(
        head_metrics(jnp.asarray(weights, jnp.float32), jnp.asarray(mask), visible, special)
    )
    want = reference_metrics(weights, mask, mask, special, True, windows=windows)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    return weights, want


def test_sliding_windows_per_layer_match_the_reference():
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    windows = (2, None, 3)
    visible = [
        np.asarray(key_visibility(jnp.asarray(mask), causal=True, window=w)) for w in windows
    ]
    weights, want = windowed_metrics(7, mask, windows, visible)
    # Ignoring the windows gets other numbers (normalized entropy divides by log 2 in layer 0).
    unwindowed = np.asarray(
        head_metrics(
            jnp.asarray(weights, jnp.float32), jnp.asarray(mask), visible[1], np.zeros((2, 6))
        )
    )
    assert not np.allclose(unwindowed[:, 0], want[:, 0], equal_nan=True)


def test_layers_sharing_a_window_are_reduced_together_in_layer_order():
    # As the corpus step passes them: one mask object per window, repeated per layer.
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    windows = (2, None, 2, None, 3)
    masks = {w: key_visibility(jnp.asarray(mask), causal=True, window=w) for w in set(windows)}
    visible = tuple(masks[w] for w in windows)
    groups = mask_groups(visible, len(windows))
    assert [layers for layers, _ in groups] == [(0, 2), (1, 3), (4,)]
    windowed_metrics(8, mask, windows, visible, heads=3)


def test_family_flags():
    class Config:
        def __init__(self, family, **flags):
            self.family = family
            self.seq2seq = False  # every config says (ArchitectureConfig)
            self.__dict__.update(flags)

    assert not is_causal(Config("bert", causal=False)) and is_causal(Config("gpt2", causal=True))
    assert is_causal(Config("bert", causal=True)) and not is_causal(Config("llama", causal=False))
    assert is_encoder_decoder(Config("t5", seq2seq=True))
    assert not is_encoder_decoder(Config("bert", causal=False))
