"""Head tables (aggregation, layer summaries, PCA map, clusters) and query/key geometry."""

import math

import numpy as np
import pytest
from sklearn.decomposition import PCA

from generator.analyze.heads import (
    DEFINITIONS,
    aggregate_texts,
    cluster_heads,
    definitions,
    head_tables,
    layer_summary,
    pca_2d,
    standardise,
)
from generator.analyze.qk_geometry import align_keys, chosen_tokens, joint_projection, qk_geometry
from generator.extract.head_metrics import METRICS

NAMES = ["entropy", "nonzero_max", "next"]


def test_every_metric_has_a_one_sentence_definition():
    rows = definitions(list(METRICS), 0.01)
    assert [r["name"] for r in rows] == list(METRICS)
    assert set(DEFINITIONS) == set(METRICS)
    for row in rows:
        assert row["definition"].endswith(".") and "{" not in row["definition"] + row["label"]


def test_aggregate_means_texts_skips_nan_and_takes_max_for_nonzero_max():
    per_text = np.array(
        [
            [[[1.0, 3.0, np.nan]]],
            [[[2.0, 5.0, np.nan]]],
            [[[np.nan, 4.0, np.nan]]],
        ]
    )  # [text=3, layer=1, head=1, metric=3]
    out = aggregate_texts(per_text, NAMES)
    assert out[0, 0, 0] == 1.5  # mean of the texts that have a value
    assert out[0, 0, 1] == 5.0  # max over texts
    assert math.isnan(out[0, 0, 2])  # never applicable


def test_layer_summary_over_heads():
    values = np.array([[[1.0], [3.0]], [[2.0], [np.nan]]])  # [layer=2, head=2, metric=1]
    rows = layer_summary(values, ["entropy"])
    assert rows == [
        {"layer": 0, "metric": "entropy", "mean": 2.0, "min": 1.0, "max": 3.0},
        {"layer": 1, "metric": "entropy", "mean": 2.0, "min": 2.0, "max": 2.0},
    ]


def test_standardise_drops_constant_and_undefined_columns():
    features = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 1.0], [5.0, 5.0, 2.0]])
    z, kept = standardise(features, ["a", "b", "c"])
    assert kept == ["a"]
    np.testing.assert_allclose(z[:, 0], [-1.224744871, 0.0, 1.224744871])


def test_pca_matches_scikit_learn_up_to_sign():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 5)) @ rng.normal(size=(5, 5))
    coords, explained = pca_2d(z)
    reference = PCA(n_components=2).fit(z)
    expected = reference.transform(z)
    for j in range(2):
        sign = np.sign(coords[0, j] * expected[0, j])
        np.testing.assert_allclose(coords[:, j], sign * expected[:, j], atol=1e-9)
    np.testing.assert_allclose(explained, reference.explained_variance_ratio_, rtol=1e-9)


def test_clusters_recover_separated_groups_deterministically():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0, 0], [8, 0, 0], [0, 8, 8]])
    z = np.concatenate([c + rng.normal(scale=0.3, size=(6, 3)) for c in centres])
    labels, score = cluster_heads(z)
    assert labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert score > 0.8
    again, _ = cluster_heads(z)
    assert again.tolist() == labels.tolist()


def test_too_few_heads_form_one_cluster():
    labels, score = cluster_heads(np.array([[0.0], [1.0]]))
    assert labels.tolist() == [0, 0] and math.isnan(score)


def test_head_tables_shapes_and_json_safety():
    rng = np.random.default_rng(2)
    per_text = rng.uniform(size=(5, 3, 4, len(METRICS)))
    per_text[..., METRICS.index("next")] = np.nan  # as for a causal model
    tables = head_tables(per_text, list(METRICS))
    rows = tables["head_metrics"]
    assert len(rows) == 12 and {(r["layer"], r["head"]) for r in rows} == {
        (layer, head) for layer in range(3) for head in range(4)
    }
    assert all(r["next"] is None for r in rows)
    assert rows[5]["entropy"] == pytest.approx(per_text[:, 1, 1, 0].mean(), abs=1e-5)
    assert "next" not in tables["head_cluster_info"]["metrics"]
    assert len(tables["head_clusters"]) == 12
    assert {r["metric"] for r in tables["head_layer_summary"]} == set(METRICS) - {"next"}
    import json

    json.dumps(tables, allow_nan=False)  # no NaN reaches a page


def test_aligned_keys_keep_every_attention_pattern():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(10, 8)) + 2.0
    k = rng.normal(size=(10, 8)) * 5.0 - 1.0
    q2, k2 = align_keys(q, k)
    scores, aligned = q @ k.T, q2 @ k2.T
    shift = aligned - scores  # must be constant along keys for each query: softmax unchanged
    np.testing.assert_allclose(shift, shift[:, :1] * np.ones((1, 10)), atol=1e-9)
    assert np.mean(np.linalg.norm(q2, axis=1)) == pytest.approx(np.mean(np.linalg.norm(k2, axis=1)))


def test_joint_projection_is_pca_of_queries_and_keys():
    rng = np.random.default_rng(4)
    q, k = rng.normal(size=(12, 6)), rng.normal(size=(12, 6)) * 2
    coords, explained = joint_projection(q, k)
    assert coords.shape == (24, 2) and np.abs(coords).max() == pytest.approx(1.0)
    q2, k2 = align_keys(q, k)
    reference = PCA(n_components=2).fit(np.concatenate([q2, k2]))
    expected = reference.transform(np.concatenate([q2, k2]))
    expected /= np.abs(expected).max()
    for j in range(2):
        sign = np.sign(coords[0, j] * expected[0, j])
        # the two axes are scaled by one shared factor, so compare after it
        scale = np.abs(coords[:, j]).max() / np.abs(expected[:, j]).max()
        np.testing.assert_allclose(coords[:, j], sign * scale * expected[:, j], atol=1e-9)
    np.testing.assert_allclose(explained, reference.explained_variance_ratio_, rtol=1e-9)


def test_qk_geometry_respects_the_budget_and_padding():
    rng = np.random.default_rng(5)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    queries = rng.normal(size=(2, 2, 4, 4, 3))  # [example, layer, head, token, d_head]
    keys = rng.normal(size=(2, 2, 2, 4, 3))  # two key heads shared by four query heads (GQA)
    tokens = np.array([["a", "b", "c", ""], ["d", "e", "", ""]])
    table = qk_geometry(queries, keys, mask, tokens, ["t0", "t1"], labels=["x", "y"])
    assert table["tokens"] == ["a", "b", "c", "d", "e"] and table["total_tokens"] == 5
    assert table["example"] == [0, 0, 0, 1, 1] and table["position"] == [0, 1, 2, 0, 1]
    assert len(table["heads"]) == 8 and all(len(h["x"]) == 10 for h in table["heads"])
    small = qk_geometry(
        queries, keys, mask, tokens, ["t0", "t1"], labels=["x", "y"], budget=4 * 8 * 2
    )
    assert small["points_per_head"] == 2 and small["tokens"] == ["a", "b"]
    assert chosen_tokens(mask, 3) == [(0, 0), (0, 1), (0, 2)]
    # head 3 uses key head 1: projecting by hand gives the same map
    coords, _ = joint_projection(
        queries[[0, 0, 0, 1, 1], 1, 3, [0, 1, 2, 0, 1]],
        keys[[0, 0, 0, 1, 1], 1, 1, [0, 1, 2, 0, 1]],
    )
    entry = table["heads"][1 * 4 + 3]
    np.testing.assert_allclose(entry["x"], np.round(coords[:, 0], 3))
