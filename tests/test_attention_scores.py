"""Attention scores before the softmax (issue #14, item 3).

Exact property: the softmax of the stored scores over the keys each query can see gives the
stored attention weights (atol 1e-5), for every family: the model outputs on the parity inputs
(whose attentions test_parity_* compare with PyTorch), and the arrays the builds store. The
corpus-wide score histogram counts every visible (query, key) pair of every head exactly once,
in the bins numpy assigns.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_parity_families import CASES, run
from test_parity_t5 import run as run_t5

from generator.artifacts import open_artifacts
from generator.extract.activation_stats import VALUES, score_histogram

ATOL = 1e-5
MEASURED: dict[str, float] = {}  # family -> max |softmax(scores) - attentions| (report)


def softmax_visible(scores: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Softmax of [..., query, key] scores over the visible keys (0 elsewhere and on empty rows)."""
    scores = np.asarray(scores, np.float64)
    shifted = np.where(visible, scores, -np.inf)
    top = np.max(shifted, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.where(visible, np.exp(shifted - top), 0.0)
    total = weights.sum(-1, keepdims=True)
    return np.where(total > 0, weights / np.maximum(total, 1e-300), 0.0)


def visibility(query_mask, key_mask, *, causal=False, window=None) -> np.ndarray:
    """[batch, query, key] booleans: padding, causal mask and sliding window (numpy, for tests)."""
    nq, nk = query_mask.shape[1], key_mask.shape[1]
    q, k = np.arange(nq)[:, None], np.arange(nk)[None, :]
    visible = np.broadcast_to(np.asarray(key_mask)[:, None, :] > 0, (len(key_mask), nq, nk))
    if causal:
        visible = visible & (k <= q)[None]
    if window is not None:
        visible = visible & (k > q - window)[None]
    return visible


def assert_softmax_matches(scores, attentions, query_mask, visible_per_layer, family: str):
    """Compare softmax(scores) with attentions on real query rows, layer by layer."""
    worst = 0.0
    real = np.asarray(query_mask) > 0  # [batch, query]
    for layer, visible in enumerate(visible_per_layer):
        got = softmax_visible(scores[:, layer], visible[:, None])
        diff = np.abs(got - np.asarray(attentions[:, layer], np.float64))
        worst = max(
            worst,
            float(
                diff[
                    real[:, None, :, None].repeat(diff.shape[1], 1).repeat(diff.shape[-1], -1)
                ].max()
            ),
        )
    MEASURED[family] = max(MEASURED.get(family, 0.0), worst)
    print(f"{family}: max |softmax(scores) - attentions| = {worst:.3g}")
    assert worst <= ATOL, f"{family}: {worst:.3g}"


@pytest.mark.parametrize("case", CASES)
def test_softmax_of_model_scores_gives_its_attentions(case, tmp_path_factory):
    ref, out, loaded = run(case, tmp_path_factory.mktemp("scores-" + case))
    config = loaded.config
    scores, attentions = out["attention_scores"], out["attentions"]
    assert scores.shape == attentions.shape and scores.dtype == np.float32
    mask = ref["attention_mask"]
    windows = tuple(config.sliding_windows or ()) or (None,) * scores.shape[1]
    per_layer = [visibility(mask, mask, causal=config.causal, window=w) for w in windows]
    assert_softmax_matches(scores, attentions, mask, per_layer, case)


@pytest.mark.parametrize("name", ["tiny-t5", "tiny-t5-v1_1"])
def test_softmax_of_t5_scores_gives_all_three_attentions(name):
    ref, out, _ = run_t5(name)
    enc, dec = ref["attention_mask"], ref["decoder_attention_mask"]
    kinds = {
        "encoder": (enc, visibility(enc, enc)),
        "decoder": (dec, visibility(dec, dec, causal=True)),
        "cross": (dec, visibility(dec, enc)),
    }
    for kind, (query_mask, visible) in kinds.items():
        scores = out[f"{kind}_attention_scores"]
        per_layer = [visible] * scores.shape[1]
        assert_softmax_matches(
            scores, out[f"{kind}_attentions"], query_mask, per_layer, f"{name} {kind}"
        )


def test_t5_self_attention_scores_hold_the_relative_position_bias():
    """Scores minus q·k are the first block's bucket bias (cross-attention has none)."""
    _, out, loaded = run_t5("tiny-t5-v1_1")
    q, k = out["encoder_queries"].astype(np.float64), out["encoder_keys"].astype(np.float64)
    bias = out["encoder_attention_scores"] - np.einsum("blhqd,blhkd->blhqk", q, k)
    n = q.shape[3]
    table = loaded.model.encoder.block[0].layer[0].SelfAttention.position_bias(n, n)
    np.testing.assert_allclose(
        bias, np.broadcast_to(np.asarray(table)[:, None], bias.shape), atol=1e-4
    )
    q, k = out["cross_queries"].astype(np.float64), out["cross_keys"].astype(np.float64)
    plain = np.einsum("blhqd,blhkd->blhqk", q, k)
    np.testing.assert_allclose(out["cross_attention_scores"], plain, atol=1e-4)


def test_score_histogram_counts_visible_pairs_in_numpy_bins():
    rng = np.random.default_rng(0)
    batch, layers, heads, n = 3, 2, 2, 7
    scores = (rng.standard_normal((batch, layers, heads, n, n)) * 10.0).astype(np.float32)
    scores[0, 0, 0, 0, :3] = [0.0, 1e-5, 3e6]  # the central bin, and beyond the outer edge
    mask = (np.arange(n)[None] < np.array([[7], [4], [1]])).astype(np.int32)
    visible = [visibility(mask, mask, causal=True), visibility(mask, mask, causal=True, window=2)]
    got = np.asarray(
        score_histogram({"attention_scores": scores, "key_visible": tuple(visible)}, mask)
    )
    edges = VALUES.edges()
    assert got.shape == (batch, layers, heads, VALUES.bins)
    for b in range(batch):
        for layer in range(layers):
            keep = visible[layer][b] & (mask[b][:, None] > 0)
            for h in range(heads):
                values = np.clip(scores[b, layer, h][keep], edges[0], edges[-1])
                want, _ = np.histogram(values, bins=edges)
                np.testing.assert_array_equal(got[b, layer, h], want)


def built(build, name: str):
    _, _, artifacts_root = build
    return open_artifacts(artifacts_root / name)


def check_stored(artifacts, family: str, *, causal: bool = False, prefix: str = "", kind=""):
    """Stored scores are float32 and their softmax gives the stored attentions."""
    name = f"showcase/{prefix}attention_scores"
    entry = artifacts.manifest["arrays"][name]
    assert entry["dtype"] == "float32"
    assert entry["axes"] == ["example", "layer", "head", "query", "key"]
    scores = np.asarray(artifacts.array(name))
    attentions = np.asarray(artifacts.array(f"showcase/{prefix}attentions"))
    sides = {"": "", "encoder_": "", "decoder_": "decoder_", "cross_": "decoder_"}
    query_mask = np.asarray(artifacts.array(f"showcase/{sides[prefix]}attention_mask"))
    key_side = "" if prefix in ("", "encoder_", "cross_") else "decoder_"
    key_mask = np.asarray(artifacts.array(f"showcase/{key_side}attention_mask"))
    visible = visibility(query_mask, key_mask, causal=causal)
    per_layer = [visible] * scores.shape[1]
    assert_softmax_matches(scores, attentions, query_mask, per_layer, f"{family}{kind}")
    return scores


def check_histogram(artifacts, *, causal: bool = False):
    """corpus/score_hist counts heads x visible pairs of every text, exactly."""
    entry = artifacts.manifest["arrays"]["corpus/score_hist"]
    assert entry["axes"] == ["layer", "head", "bin"] and entry["dtype"] == "float64"
    counts = np.asarray(artifacts.array("corpus/score_hist"))
    lengths = np.asarray(artifacts.array("corpus/token_lengths"), np.float64)
    pairs = (lengths * (lengths + 1) / 2 if causal else lengths**2).sum()
    np.testing.assert_array_equal(counts.sum(-1), np.full(counts.shape[:2], pairs))
    assert len(np.asarray(artifacts.array("corpus/act_edges"))) == counts.shape[-1] + 1


def test_tiny_bert_build_stores_scores(tiny_build):
    artifacts = built(tiny_build, "tiny-bert")
    check_stored(artifacts, "tiny-bert build")
    check_histogram(artifacts)


def test_albert_build_stores_scores(albert_build):
    artifacts = built(albert_build, "tiny-albert")
    scores = check_stored(artifacts, "tiny-albert build")
    assert scores.shape[1] == artifacts.manifest["model"]["config"]["n_layers"]
    check_histogram(artifacts)


def test_decoder_build_stores_causal_scores(decoder_build):
    artifacts = built(decoder_build, "tiny-llama")
    scores = check_stored(artifacts, "tiny-llama build", causal=True)
    mask = np.asarray(artifacts.array("showcase/attention_mask")) > 0
    above = np.triu(np.ones(scores.shape[-2:], bool), k=1)
    # Before the mask: the scores of future keys are real numbers, not the mask's minimum.
    assert (
        np.all(np.isfinite(scores)) and np.abs(scores[0, :, :, above & mask[0][None]]).max() < 1e3
    )
    check_histogram(artifacts, causal=True)


def test_t5_build_stores_scores_of_all_three_kinds(t5_build):
    artifacts = built(t5_build, "tiny-t5")
    for prefix, causal in (("encoder_", False), ("decoder_", True), ("cross_", False)):
        check_stored(
            artifacts, "tiny-t5 build", causal=causal, prefix=prefix, kind=" " + prefix[:-1]
        )
    assert not artifacts.has("showcase/attention_scores")
    check_histogram(artifacts)  # the corpus pass runs the encoder


def test_default_build_stores_scores_and_reports_their_size(default_build):
    artifacts = built(default_build, "all-minilm-l6-v2")
    scores = check_stored(artifacts, "MiniLM default build")
    check_histogram(artifacts)
    entry = artifacts.manifest["arrays"]["showcase/attention_scores"]
    size = (artifacts.root / entry["path"]).stat().st_size
    print("default build: showcase/attention_scores", json.dumps(entry["shape"]), size, "bytes")
    assert size >= scores.nbytes


def test_only_the_showcase_step_returns_scores():
    """The corpus step returns per-text reductions only: no score map leaves it (XLA drops the
    stacked maps once the histogram has read them); the showcase step returns them in float32."""
    import jax
    import jax.numpy as jnp
    from cards import TINY_BERT

    from generator.extract.reducers import active_reducers
    from generator.extract.steps import make_steps
    from generator.models.loading import load_model

    loaded = load_model(TINY_BERT)
    config = loaded.config
    reducers = active_reducers(config)
    assert "score_hist" in [r.name for r in reducers]
    corpus_step, showcase_step, params = make_steps(loaded.model, reducers, jnp.bfloat16)
    ids = jax.ShapeDtypeStruct((4, 16), jnp.int32)
    corpus = jax.eval_shape(corpus_step, params, ids, ids, ids)
    shapes = {name: value.shape for name, value in corpus.items()}
    assert shapes["score_hist"] == (4, config.n_layers, config.n_heads, VALUES.bins)
    assert "attention_scores" not in shapes and all(len(s) <= 4 for s in shapes.values())
    showcase = jax.eval_shape(showcase_step, params, ids, ids)
    assert showcase["attention_scores"].shape == (4, config.n_layers, config.n_heads, 16, 16)
    assert showcase["attention_scores"].dtype == jnp.float32  # whatever store_dtype
    assert showcase["attentions"].dtype == jnp.bfloat16
