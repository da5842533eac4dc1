"""Activation reducers (JAX) and their analysis (numpy) against direct numpy computation."""

import jax.numpy as jnp
import numpy as np
import pytest

from generator.analyze.activations import (
    OUTLIER_RATIO,
    histogram_quantiles,
    median_abs,
    outlier_dimensions,
)
from generator.artifacts import open_artifacts
from generator.extract.activation_stats import (
    NORMS,
    VALUES,
    extreme_positions,
    extreme_values,
    layer_histograms,
    mlp_histogram,
    projection_histogram,
    residual_norm_histogram,
    residual_norm_sum,
    score_histogram,
)
from generator.extract.head_metrics import key_visibility


def histogram(values: np.ndarray, grid=VALUES) -> np.ndarray:
    """Count values with the jitted reducer path: one text, one layer, all values as features."""
    x = jnp.asarray(values, jnp.float32)[None, None, None, :]
    return np.asarray(layer_histograms(x, jnp.ones((1, 1), jnp.int32), grid))[0, 0]


def test_bins_agree_with_the_documented_edges():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [rng.normal(size=2000), rng.normal(scale=300, size=500), rng.uniform(-2e-3, 2e-3, 200)]
    ).astype(np.float32)
    edges = VALUES.edges()
    index = np.asarray(VALUES.index(jnp.asarray(values)))
    expected = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, VALUES.bins - 1)
    near_edge = np.min(np.abs(values[:, None] / edges[None, :] - 1.0), axis=1) < 1e-5
    np.testing.assert_array_equal(index[~near_edge], expected[~near_edge])
    assert len(edges) == VALUES.bins + 1 and np.all(np.diff(edges) > 0)
    assert len(NORMS.edges()) == NORMS.bins + 1 and NORMS.edges()[0] == 0.0


def test_values_beyond_the_grid_count_in_the_outer_bins():
    counts = histogram(np.array([-1e9, 1e9, 0.0, 1e-9]))
    assert counts[0] == 1 and counts[-1] == 1 and counts[VALUES.bins // 2] == 2


def test_padding_tokens_are_not_counted():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)  # [batch, layer, token, feature]
    x[0, :, 3:] = 1e6  # padding carries garbage
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    counts = np.asarray(layer_histograms(jnp.asarray(x), jnp.asarray(mask)))
    assert counts.shape == (2, 3, VALUES.bins)
    np.testing.assert_array_equal(counts.sum(-1), [[12, 12, 12], [20, 20, 20]])
    assert counts[0, :, -1].sum() == 0
    for layer in range(3):
        expected, _ = np.histogram(np.clip(x[1, layer], -1e5, 1e5), bins=VALUES.edges())
        assert np.abs(counts[1, layer] - expected).sum() <= 2  # edge rounding of log10 at most


@pytest.mark.parametrize(
    "name,draw",
    [
        ("normal", lambda rng: rng.normal(size=200_000)),
        ("scaled", lambda rng: rng.normal(scale=0.02, size=200_000)),
        (
            "massive",
            lambda rng: np.concatenate([rng.normal(size=197_000), rng.normal(800, 50, 3_000)]),
        ),
        ("lognormal", lambda rng: rng.lognormal(0.0, 1.5, size=200_000) - 2.0),
    ],
)
def test_quantiles_from_the_summed_histogram_are_within_a_bin_of_numpy(name, draw):
    rng = np.random.default_rng(2)
    values = draw(rng).astype(np.float32)
    # count in four "texts" and sum, as the analyze stage does
    counts = sum(histogram(chunk) for chunk in np.array_split(values, 4))
    edges = VALUES.edges()
    levels = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
    got = histogram_quantiles(counts, edges, levels)
    truth = np.quantile(values.astype(np.float64), levels)
    bins = np.clip(np.searchsorted(edges, truth, side="right") - 1, 0, len(edges) - 2)
    width = edges[bins + 1] - edges[bins]
    assert np.all(np.abs(got - truth) <= width + 1e-12), (name, got, truth, width)
    assert median_abs(counts, edges) == pytest.approx(np.median(np.abs(values)), rel=0.16, abs=2e-3)


def test_norm_histogram_quantiles_and_exact_sums():
    rng = np.random.default_rng(3)
    hidden = (
        rng.normal(size=(2, 3, 6, 8)).astype(np.float32) * np.array([1, 5, 50])[None, :, None, None]
    )
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    outputs = {"hidden_states": jnp.asarray(hidden)}
    norms = np.linalg.norm(hidden, axis=-1)  # [batch, layer, token]
    sums = np.asarray(residual_norm_sum(outputs, jnp.asarray(mask)))
    np.testing.assert_allclose(sums, (norms * mask[:, None, :]).sum(-1), rtol=1e-5)
    counts = np.asarray(residual_norm_histogram(outputs, jnp.asarray(mask))).sum(0)
    edges = NORMS.edges()
    for layer in range(3):
        visible = np.concatenate([norms[0, layer, :4], norms[1, layer]])
        assert counts[layer].sum() == len(visible)
        median = histogram_quantiles(counts[layer], edges, (0.5,))[0]
        assert median == pytest.approx(np.median(visible), rel=0.04)


def test_extremes_and_positions_match_numpy():
    rng = np.random.default_rng(4)
    hidden = rng.normal(size=(3, 2, 7, 5)).astype(np.float32)
    hidden[0, :, 5:] = 100.0  # padding must never win
    hidden[2, 1, 3, 4] = -40.0
    mask = np.array([[1] * 5 + [0] * 2, [1] * 7, [1] * 7])
    outputs = {"hidden_states": jnp.asarray(hidden)}
    values = np.asarray(extreme_values(outputs, jnp.asarray(mask)))
    positions = np.asarray(extreme_positions(outputs, jnp.asarray(mask)))
    for b in range(3):
        n = int(mask[b].sum())
        expected_pos = np.abs(hidden[b, :, :n]).argmax(axis=1)  # [layer, dim]
        np.testing.assert_array_equal(positions[b], expected_pos)
        np.testing.assert_array_equal(
            values[b], np.take_along_axis(hidden[b], expected_pos[:, None, :], axis=1)[:, 0]
        )
    assert values[2, 1, 4] == -40.0 and positions[2, 1, 4] == 3


def test_query_histograms_flatten_heads():
    rng = np.random.default_rng(5)
    queries = rng.normal(size=(1, 2, 3, 4, 5)).astype(np.float32)  # [b, layer, head, token, d]
    mask = np.array([[1, 1, 0, 0]])
    counts = np.asarray(projection_histogram("queries")({"queries": jnp.asarray(queries)}, mask))
    assert counts.shape == (1, 2, VALUES.bins)
    np.testing.assert_array_equal(counts.sum(-1), [[2 * 3 * 5, 2 * 3 * 5]])


def test_score_and_mlp_histograms_count_each_layer_as_alone():
    # Layers are counted together (one group per sliding-window mask, an in-program loop for
    # the MLP): each layer's counts must be those of that layer's values alone.
    rng = np.random.default_rng(9)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    windows = (2, None, 2)
    masks = {w: key_visibility(jnp.asarray(mask), causal=True, window=w) for w in set(windows)}
    scores = rng.normal(scale=3.0, size=(2, 3, 2, 5, 5)).astype(np.float32)
    outputs = {
        "attention_scores": jnp.asarray(scores),
        "key_visible": tuple(masks[w] for w in windows),
    }
    counts = np.asarray(score_histogram(outputs, jnp.asarray(mask)))
    assert counts.shape == (2, 3, 2, VALUES.bins)
    for b, layer, head in np.ndindex(2, 3, 2):
        seen = np.asarray(masks[windows[layer]][b]) & (mask[b][:, None] > 0)
        want = histogram(scores[b, layer, head][seen])
        np.testing.assert_array_equal(counts[b, layer, head], want)
    mlp = rng.normal(size=(2, 3, 5, 7)).astype(np.float32)  # [batch, layer, token, d_mlp]
    counts = np.asarray(mlp_histogram({"mlp_activations": jnp.asarray(mlp)}, jnp.asarray(mask)))
    for b, layer in np.ndindex(2, 3):
        want = histogram(mlp[b, layer][mask[b] > 0].ravel())
        np.testing.assert_array_equal(counts[b, layer], want)


def test_planted_outlier_dimension_is_found_with_its_token():
    rng = np.random.default_rng(6)
    texts, layers, dims, tokens = 20, 3, 64, 6
    extremes = rng.normal(size=(texts, layers, dims)) * 0.5 + np.sign(rng.normal()) * 2.0
    positions = rng.integers(1, tokens, size=(texts, layers, dims)).astype(np.float32)
    extremes[:, 2, 17] = 80.0  # dimension 17 explodes in the last layer, always at position 0
    positions[:, 2, 17] = 0
    input_ids = rng.integers(10, 50, size=(texts, tokens))
    input_ids[:, 0] = 101
    names = {101: "[CLS]"}
    profile, details = outlier_dimensions(
        extremes,
        positions,
        input_ids,
        lambda i: names.get(int(i), f"t{int(i)}"),
        np.array([f"text {i}" for i in range(texts)]),
        median_abs_by_layer=[0.5, 0.5, 0.5],
    )
    flagged = [(d["layer"], d["dim"]) for d in details if d["flagged"]]
    assert flagged == [(2, 17)]
    row = next(d for d in details if d["dim"] == 17 and d["layer"] == 2)
    assert row["token"] == "[CLS]" and row["usual_token"] == "[CLS]" and row["usual_share"] == 1.0
    assert row["ratio"] >= OUTLIER_RATIO and row["ratio_to_median"] == pytest.approx(160.0)
    assert len(profile) == layers * dims


def test_corpus_reducers_on_the_tiny_build(tiny_build):
    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    config = artifacts.manifest["model"]["config"]
    lengths = np.asarray(artifacts.array("corpus/token_lengths"))
    hidden_counts = artifacts.array("corpus/act_hist_hidden")
    assert artifacts.axes("corpus/act_hist_hidden") == ["text", "layer", "bin"]
    np.testing.assert_array_equal(
        hidden_counts.sum(-1), np.repeat(lengths[:, None] * config["d_model"], 3, axis=1)
    )
    query_counts = artifacts.array("corpus/act_hist_queries")
    np.testing.assert_array_equal(
        query_counts.sum(-1), np.repeat(lengths[:, None] * config["d_model"], 2, axis=1)
    )
    assert artifacts.array("corpus/act_hist_hidden").dtype == np.float32
    # showcase rows: reducers agree with the full captures
    index = artifacts.array("showcase/index")
    hidden = np.asarray(artifacts.array("showcase/hidden_states"), dtype=np.float64)
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    for example, row in enumerate(index):
        if row >= len(lengths):
            continue  # a showcase text outside the corpus has no corpus statistics
        visible = hidden[example][:, mask[example]]  # [layer, token, d_model]
        norms = np.linalg.norm(visible, axis=-1).sum(-1)
        np.testing.assert_allclose(
            artifacts.array("corpus/residual_norm_sum")[row], norms, rtol=1e-4
        )
        positions = np.abs(visible).argmax(axis=1)
        np.testing.assert_array_equal(artifacts.array("corpus/act_extreme_pos")[row], positions)
    ids = artifacts.array("corpus/input_ids")
    assert ids.shape[0] == len(lengths) and np.all((ids >= 0).sum(1) == lengths)
    vocab = artifacts.array("corpus/vocab_ids")
    assert set(np.unique(ids[ids >= 0]).tolist()) == set(vocab.tolist())


def test_dead_dimensions_are_reported():
    from generator.analyze.activations import DEAD_RATIO, dead_dimensions

    rng = np.random.default_rng(7)
    extremes = rng.normal(size=(10, 2, 32)) + 3.0
    extremes[:, 1, 5] = 1e-31  # a LayerNorm gain of ~0 kills dimension 5 after layer 1
    positions = np.zeros((10, 2, 32))
    profile, _ = outlier_dimensions(
        extremes,
        positions,
        np.zeros((10, 4), int),
        str,
        np.array(["t"] * 10),
        median_abs_by_layer=[1.0, 1.0],
    )
    dead = dead_dimensions(profile)
    assert [(d["layer"], d["dim"]) for d in dead] == [(1, 5)]
    assert dead[0]["max_abs"] < DEAD_RATIO


def test_page_values_per_token_are_the_showcase_hidden_states(tiny_build):
    """The activations page's per-token view of each outlier dimension reads showcase/hidden_states."""
    from generator.render.pages.dimension_tokens import dimension_tokens

    _, _, artifacts_root = tiny_build
    artifacts = open_artifacts(artifacts_root / "tiny-bert")
    hidden = np.asarray(artifacts.array("showcase/hidden_states"), dtype=np.float64)
    mask = np.asarray(artifacts.array("showcase/attention_mask")).astype(bool)
    rows = [
        {"layer": 0, "layer_label": "embeddings", "dim": 5},
        {"layer": 2, "layer_label": "after 2", "dim": 0},
    ]
    data = dimension_tokens(artifacts, rows)
    assert [key for key, _ in data["pairs"]] == ["embeddings:5", "after 2:0"]
    for row, (key, _) in zip(rows, data["pairs"], strict=True):
        for example, values in enumerate(data["values"][key]):
            want = hidden[example, row["layer"], mask[example], row["dim"]]
            np.testing.assert_allclose(values, want, rtol=5e-4, atol=1e-12)
    assert data["tokens"][0][0] == "[CLS]"
